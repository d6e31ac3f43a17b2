package fieldsync

import (
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/services/org"
)

func TestCursorRoundTripAndGarbage(t *testing.T) {
	c := cursor{Seq: 42, Total: 100, More: true, Mutation: 7, Issued: 1795000000, Scope: "x"}
	got, err := decodeCursor(encodeCursor(c))
	if err != nil || got != c {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if c, err := decodeCursor(""); err != nil || c.Seq != 0 {
		t.Errorf("empty cursor is a first sync: %+v %v", c, err)
	}
	for _, bad := range []string{"%%%", "eyJ9", strings.Repeat("A", 600), encodeCursor(cursor{Seq: 3})} {
		if _, err := decodeCursor(bad); err == nil {
			t.Errorf("accepted cursor %q", bad)
		}
	}
}

func TestScopesFollowTheHomeUnit(t *testing.T) {
	names, filters := scopes(org.Actor{UnitID: "110105001001003"})
	if len(names) != 1 || names[0] != "grid:110105001001003" || filters[0] != "110100.110105.110105001.110105001001.110105001001003" {
		t.Errorf("grid worker: %v %v", names, filters)
	}
	names, filters = scopes(org.Actor{UnitID: "110105"})
	if names[0] != "district:110105" || filters[0] != "110100.110105.*.*.*" {
		t.Errorf("district: %v %v", names, filters)
	}
	if names, _ := scopes(org.Actor{UnitID: "junk"}); len(names) != 0 {
		t.Errorf("no valid unit, no scope: %v", names)
	}
}
