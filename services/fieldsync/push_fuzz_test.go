package fieldsync

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// FuzzPushDecoding decodes push bodies as the API does and checks them as Push does:
// no input panics, and whatever is accepted is a push the write path can take — a
// client id that names a device, at most MaxMutations mutations with consecutive
// positive ids, known names, and arguments that are JSON objects within MaxArgs.
func FuzzPushDecoding(f *testing.F) {
	f.Add([]byte(`{"clientId":"phone-1","schemaVersion":1,"mutations":[{"id":1,"name":"incident.report","args":{"incidentId":"x"}}]}`))
	f.Add([]byte(`{"clientId":"phone-1","schemaVersion":1,"mutations":[{"id":1,"name":"incident.accept","args":{}},{"id":2,"name":"incident.start","args":{}}]}`))
	f.Add([]byte(`{"clientId":"phone-1","schemaVersion":1,"mutations":[{"id":3,"name":"incident.accept","args":[1]},{"id":3,"name":"","args":null}]}`))
	f.Add([]byte(`{"clientId":"../etc","schemaVersion":2,"mutations":[{"id":-1,"name":"$where","args":{"$ne":1}}]}`))
	f.Add([]byte(`{"clientId":"phone-1","mutations":[{"id":1e20,"name":"incident.report","args":"{}"}]}`))
	s := &Service{opt: Options{MaxMutations: 20, MaxArgs: 256}}
	actor := org.Actor{UserID: "w", DeviceID: "phone-1", UnitID: "110105001001001"}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r PushRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		if dec.Decode(&r) != nil {
			return
		}
		if s.validatePush(actor, &r) != nil {
			return
		}
		if !auth.ValidDeviceID(r.ClientID) || r.ClientID != actor.DeviceID || r.SchemaVersion != SchemaVersion || len(r.Mutations) > s.opt.MaxMutations {
			t.Fatalf("accepted a push with client %q, schema %d, %d mutations", r.ClientID, r.SchemaVersion, len(r.Mutations))
		}
		for i, m := range r.Mutations {
			if m.ID < 1 || (i > 0 && m.ID != r.Mutations[i-1].ID+1) || !slices.Contains(MutationNames, m.Name) ||
				len(m.Args) > s.opt.MaxArgs || !json.Valid(m.Args) || bytes.TrimSpace(m.Args)[0] != '{' {
				t.Fatalf("accepted mutation %d: %+v", i, m)
			}
		}
	})
}
