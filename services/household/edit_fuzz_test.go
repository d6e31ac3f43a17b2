package household

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// FuzzHouseholdField validates one edited field of a household as household.create
// and household.update do: no input panics, and an accepted value is within the
// rules — text fields within their lengths, at most 50 residents each named and
// tagged with known tags, ID-card and mobile numbers valid (or masks, or "-").
func FuzzHouseholdField(f *testing.F) {
	f.Add("building", []byte(`"3号楼"`))
	f.Add("address", []byte(`"大同街12号"`))
	f.Add("tags", []byte(`["elderly_alone","disabled"]`))
	f.Add("members", []byte(`[{"residentId":"r-1","name":"王大爷","relation":"head","idCard":"11010519491231002X","phone":"13812345678","tags":["elderly_alone"]}]`))
	f.Add("members", []byte(`[{"name":"","idCard":"110105********002X","phone":"138****5678"},{"name":{"$ne":1}}]`))
	f.Add("$where", []byte(`{"$gt":""}`))
	f.Fuzz(func(t *testing.T, field string, raw []byte) {
		var h Household
		errs := fault.Fields{}
		validate(errs, field, raw, &h)
		if len(errs) > 0 {
			return
		}
		for _, s := range []struct {
			v   string
			max int
		}{{h.Building, 50}, {h.Unit, 50}, {h.Room, 50}, {h.Address, 200}} {
			if utf8.RuneCountInString(s.v) > s.max {
				t.Fatalf("accepted %s of %d characters", field, utf8.RuneCountInString(s.v))
			}
		}
		if len(h.Members) > 50 {
			t.Fatalf("accepted %d members", len(h.Members))
		}
		for _, tg := range h.Tags {
			if !slices.Contains(Tags, tg) {
				t.Fatalf("accepted tag %q", tg)
			}
		}
		for _, m := range h.Members {
			if n := utf8.RuneCountInString(strings.TrimSpace(m.Name)); n == 0 || n > 50 {
				t.Fatalf("accepted resident name %q", m.Name)
			}
			if m.IDCard != "" && m.IDCard != ClearValue && !masked(m.IDCard) && !org.ValidIDCard(m.IDCard) {
				t.Fatalf("accepted ID card %q", m.IDCard)
			}
			if m.Phone != "" && m.Phone != ClearValue && !masked(m.Phone) && !org.ValidMobile(m.Phone) {
				t.Fatalf("accepted phone %q", m.Phone)
			}
			for _, tg := range m.Tags {
				if !slices.Contains(Tags, tg) {
					t.Fatalf("accepted resident tag %q", tg)
				}
			}
		}
	})
}
