package incident

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/services/attachment"
)

// FuzzMoveArgs decodes the arguments every incident move after the report shares, as
// the applier does before reading anything: no input panics, and accepted ones hold a
// canonical UUIDv7 incident id, free texts of at most 2000 characters of valid UTF-8,
// and at most 9 photos, each a lower-case hex SHA-256 (no path can reach the store).
func FuzzMoveArgs(f *testing.F) {
	f.Add([]byte(`{"incidentId":"019a7b2c-1d2e-7f00-8a00-000000000001","note":"已受理"}`))
	f.Add([]byte(`{"incidentId":"019a7b2c-1d2e-7f00-8a00-000000000001","result":"已清运","photos":["` + strings.Repeat("ab", 32) + `"]}`))
	f.Add([]byte(`{"incidentId":"019a7b2c-1d2e-7f00-8a00-000000000001","reason":"重复","requesterNotice":"电话告知","dueAt":"2026-12-01T09:00:00+08:00","approved":false}`))
	f.Add([]byte(`{"incidentId":{"$ne":null},"photos":["../../etc/passwd"],"rating":"satisfied"}`))
	f.Add([]byte(`{"incidentId":"019A7B2C-1D2E-7F00-8A00-000000000001","text":"\xff\xfe"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeMove(body)
		if err != nil {
			return
		}
		if u, err := uuid.Parse(m.IncidentID); err != nil || u.Version() != 7 || u.String() != m.IncidentID {
			t.Fatalf("accepted incident id %q", m.IncidentID)
		}
		for _, v := range []string{m.Note, m.Reason, m.Result, m.Text, m.Comment, m.RequesterNotice} {
			if !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxDescription {
				t.Fatalf("accepted text of %d bytes", len(v))
			}
		}
		if len(m.Photos) > attachment.MaxPhotos {
			t.Fatalf("accepted %d photos", len(m.Photos))
		}
		for _, p := range m.Photos {
			if len(p) != 64 || strings.Trim(p, "0123456789abcdef") != "" {
				t.Fatalf("accepted photo %q", p)
			}
		}
	})
}
