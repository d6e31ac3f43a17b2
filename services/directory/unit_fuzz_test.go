package directory

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/services/org"
)

// FuzzCreateUnitArgs decodes org.createUnit arguments and validates them: no input
// panics, and accepted ones carry a unit code of a known level, a name of 1–100
// characters and, if any, a boundary of 3–2,000 vertices on the globe.
func FuzzCreateUnitArgs(f *testing.F) {
	f.Add([]byte(`{"id":"110105001001001","name":"第1网格","boundary":[{"lng":114.5,"lat":38.0},{"lng":114.6,"lat":38.0},{"lng":114.6,"lat":38.1}]}`))
	f.Add([]byte(`{"id":"110100","name":"市"}`))
	f.Add([]byte(`{"id":{"$gt":""},"name":"   ","boundary":[]}`))
	f.Add([]byte(`{"id":"1101050010010011","name":"x","boundary":[{"lng":200,"lat":-91},{"lng":"NaN"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var a CreateUnitArgs
		if json.Unmarshal(body, &a) != nil || a.Validate() != nil {
			return
		}
		if _, err := org.LevelOf(a.ID); err != nil {
			t.Fatalf("accepted code %q", a.ID)
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(a.Name)); n == 0 || n > 100 {
			t.Fatalf("accepted name %q", a.Name)
		}
		if a.Boundary != nil && (len(a.Boundary) < 3 || len(a.Boundary) > MaxBoundary) {
			t.Fatalf("accepted %d vertices", len(a.Boundary))
		}
		for _, v := range a.Boundary {
			if !(v.Lat >= -90 && v.Lat <= 90 && v.Lng >= -180 && v.Lng <= 180) {
				t.Fatalf("accepted vertex %+v", v)
			}
		}
	})
}
