package complaint

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// FuzzComplaintArgs decodes complaint.file arguments and validates them: no input
// panics, and accepted ones carry a device-made UUID, a text of 1–4000 characters of
// valid UTF-8, and, when given, a login-shaped user, a unit code and an incident id.
func FuzzComplaintArgs(f *testing.F) {
	f.Add([]byte(`{"complaintId":"019a7b2c-1d2e-7f00-8a00-000000000001","text":"网格员态度恶劣","aboutUserId":"worker1","aboutUnitId":"110105001001"}`))
	f.Add([]byte(`{"complaintId":"019a7b2c-1d2e-7f00-8a00-000000000001","text":"x","complainant":{"name":"李","phone":"13812345678"},"incidentId":"019a7b2c-1d2e-7f00-8a00-000000000002"}`))
	f.Add([]byte(`{"complaintId":{"$ne":""},"text":"\ud800","aboutUserId":"$where","aboutUnitId":"../.."}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var a Args
		if json.Unmarshal(body, &a) != nil || a.validate() != nil {
			return
		}
		if u, err := uuid.Parse(a.ComplaintID); err != nil || u.String() != a.ComplaintID {
			t.Fatalf("accepted complaint id %q", a.ComplaintID)
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(a.Text)); n == 0 || n > 4000 || !utf8.ValidString(a.Text) {
			t.Fatalf("accepted text of %d characters", n)
		}
		if strings.ContainsAny(a.AboutUserID, "$.{} ") || (a.AboutUnitID != "" && !org.ValidCode(a.AboutUnitID)) {
			t.Fatalf("accepted %q / %q", a.AboutUserID, a.AboutUnitID)
		}
	})
}
