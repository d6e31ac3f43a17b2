package incident

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/schemas"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// FuzzReportArgs decodes incident.report arguments as the applier does and checks them:
// no input panics, and accepted arguments hold a UUIDv7 id, a known category, a
// description of 1–2000 characters of valid UTF-8, a real location, an address of at
// most 200 characters, a known source, a grid code or nothing, a valid requester.
func FuzzReportArgs(f *testing.F) {
	f.Add([]byte(`{"incidentId":"019a7b2c-1d2e-7f00-8a00-000000000001","category":"place.road","description":"路面塌陷","location":{"lat":38.04,"lng":114.51}}`))
	f.Add([]byte(`{"incidentId":"019a7b2c-1d2e-7f00-8a00-000000000001","category":"place.road","description":"x","location":{"lat":0,"lng":0},"requester":{"name":"王","phone":"13812345678"},"source":"hotline","gridId":"110105001001001"}`))
	f.Add([]byte(`{"incidentId":{"$ne":null},"category":{"$regex":".*"},"description":"\u0000","location":{"lat":1e309}}`))
	f.Add([]byte(`{"incidentId":"019A7B2C-1D2E-7F00-8A00-000000000001","category":"place","description":"   ","photos":["../../etc/passwd"]}`))
	data, err := schemas.Files.ReadFile("categories.json")
	if err != nil {
		f.Fatal(err)
	}
	capab, err := schemas.Files.ReadFile("capabilities.json")
	if err != nil {
		f.Fatal(err)
	}
	cat, m, err := ParseRules(Rules{Categories: data, Capabilities: capab})
	if err != nil {
		f.Fatal(err)
	}
	cal, err := schemas.Calendar()
	if err != nil {
		f.Fatal(err)
	}
	s := NewService(nil, nil, nil, cat, m, cal)
	f.Fuzz(func(t *testing.T, body []byte) {
		var ra ReportArgs
		if json.Unmarshal(body, &ra) != nil || s.validateReport(&ra) != nil {
			return
		}
		n := utf8.RuneCountInString(strings.TrimSpace(ra.Description))
		_, known := s.Catalog().Find(ra.Category)
		switch {
		case !validID(ra.IncidentID), !known, n == 0, n > MaxDescription, !utf8.ValidString(ra.Description),
			ra.Location == nil, ra.Location.Lat < -90 || ra.Location.Lat > 90 || ra.Location.Lng < -180 || ra.Location.Lng > 180,
			utf8.RuneCountInString(ra.Address) > MaxAddress, ra.Source != "" && !sources[ra.Source]:
			t.Fatalf("accepted %+v", ra)
		case ra.GridID != "" && len(ra.GridID) != 15, ra.Requester != nil && ra.Requester.Phone != "" && !org.ValidMobile(ra.Requester.Phone):
			t.Fatalf("accepted %+v", ra)
		}
		for _, p := range ra.Photos {
			if len(p) != 64 || strings.Trim(p, "0123456789abcdef") != "" {
				t.Fatalf("accepted photo %q", p)
			}
		}
	})
}
