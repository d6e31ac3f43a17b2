package directory

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/services/org"
)

// FuzzCreateUserArgs decodes org.createUser arguments and validates them: no input
// panics, and accepted ones carry a login of 3–32 characters a-z 0-9 _ -, a name of
// 1–50 characters, at least one role and only known roles, and a valid unit code.
func FuzzCreateUserArgs(f *testing.F) {
	f.Add([]byte(`{"login":"worker1","name":"张三","roles":["grid_manager"],"unitId":"110105001001001"}`))
	f.Add([]byte(`{"login":"admin","name":"管理员","roles":["admin","leader"],"unitId":"110100"}`))
	f.Add([]byte(`{"login":{"$ne":""},"name":"x","roles":["admin"],"unitId":"110100"}`))
	f.Add([]byte(`{"login":"Bad Login","name":"","roles":[],"unitId":"11010"}`))
	f.Add([]byte(`{"login":"a-b_c","name":"   ","roles":["god"],"unitId":"110105001001001","passwordHash":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var a CreateUserArgs
		if json.Unmarshal(body, &a) != nil || a.Validate() != nil {
			return
		}
		if !ValidLogin(a.Login) || strings.ContainsAny(a.Login, "$.{} ") {
			t.Fatalf("accepted login %q", a.Login)
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(a.Name)); n == 0 || n > 50 {
			t.Fatalf("accepted name %q", a.Name)
		}
		if len(a.Roles) == 0 {
			t.Fatal("accepted no role")
		}
		for _, r := range a.Roles {
			if !org.ValidRole(r) {
				t.Fatalf("accepted role %q", r)
			}
		}
		if _, err := org.LevelOf(a.UnitID); err != nil {
			t.Fatalf("accepted unit %q", a.UnitID)
		}
	})
}
