package incident

import (
	"os"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/services/org"
)

func TestTransitionTable(t *testing.T) {
	for _, tc := range []struct {
		from   Status
		action Action
		to     Status
		code   string
	}{
		{Reported, ActAccept, Accepted, ""},
		{Accepted, ActAccept, "", "invalid_transition"},
		{Accepted, ActAssign, Assigned, ""},
		{Assigned, ActStart, InProgress, ""},
		{InProgress, ActResolve, Resolved, ""},
		{Resolved, ActVerify, Closed, ""},
		{Closed, ActReopen, InProgress, ""},
		{Closed, ActRate, Closed, ""},
		{Reported, ActRate, "", "invalid_transition"},
		{InProgress, ActEscalate, Reported, ""},
		{Closed, ActEscalate, "", "invalid_transition"},
		{Accepted, ActRefuse, Refused, ""},
		{Resolved, ActRefuse, "", "invalid_transition"},
		{InProgress, ActDelayOK, Delayed, ""},
		{Delayed, ActStart, InProgress, ""},
		{Reported, ActMerge, Duplicate, ""},
		{Refused, ActComment, Refused, ""},
		{Reported, "fly", "", "unknown_action"},
	} {
		got, err := next(tc.from, tc.action)
		code := ""
		if err != nil {
			code = err.(interface{ Error() string }).Error()
		}
		if got != tc.to || (tc.code == "" && err != nil) || (tc.code != "" && !strings.Contains(code, tc.code)) {
			t.Errorf("%s --%s--> got %q, %v; want %q %s", tc.from, tc.action, got, err, tc.to, tc.code)
		}
	}
}

func TestCatalogFile(t *testing.T) {
	data, err := os.ReadFile("../../schemas/categories.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCatalog(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, top := range []string{"people", "place", "thing", "event"} {
		cat, ok := c.Find(top)
		if !ok || len(cat.Subcategories) == 0 {
			t.Errorf("category %s missing or without sub-categories", top)
		}
	}
	if sc, ok := c.Find("place.road"); !ok || !sc.Special || sc.ServiceCode == "" {
		t.Errorf("place.road: %+v", sc)
	}
	for _, bad := range []string{`{"version":1,"categories":[]}`, `{"categories":[{"code":"a","names":{"zh":"a","en":"a"},"defaultLevel":1}]}`,
		`{"version":1,"categories":[{"code":"a","names":{"zh":"a","en":"a"},"defaultLevel":9}]}`,
		`{"version":1,"categories":[{"code":"a","names":{"zh":"a","en":"a"},"defaultLevel":1},{"code":"a","names":{"zh":"a","en":"a"},"defaultLevel":1}]}`} {
		if _, err := ParseCatalog([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestReportPlace(t *testing.T) {
	worker := org.Actor{UserID: "w", Roles: []string{org.RoleGridManager}, UnitID: "110105001001003"}
	disp := org.Actor{UserID: "d", Roles: []string{org.RoleDispatcher}, UnitID: "110105001001"}
	district := org.Actor{UserID: "x", Roles: []string{org.RoleSupervisor}, UnitID: "110105"}
	for _, tc := range []struct {
		a          org.Actor
		grid       string
		wantGrid   string
		wantUnit   string
		wantFailed bool
	}{
		{worker, "", "110105001001003", "", false},
		{worker, "110105001001004", "", "", true},
		{disp, "110105001001004", "110105001001004", "", false},
		{disp, "", "", "110105001001", false},
		{disp, "110105001002001", "", "", true},
		{district, "", "", "", true},
		{district, "110105001002001", "110105001002001", "", false},
	} {
		g, u, err := reportPlace(tc.a, tc.grid)
		if g != tc.wantGrid || u != tc.wantUnit || (err != nil) != tc.wantFailed {
			t.Errorf("%s reports in %q: %q %q %v", tc.a.UnitID, tc.grid, g, u, err)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	if got := MaskPhone("13812345678"); got != "138****5678" {
		t.Error(got)
	}
	inc := Incident{Requester: &Requester{Name: "张三", Phone: "13812345678"}}
	if w := inc.Wire(); w.Requester.Phone != "138****5678" || inc.Requester.Phone != "13812345678" {
		t.Error("Wire must mask a copy")
	}
}

func TestUnitOfPath(t *testing.T) {
	for path, want := range map[string]string{
		"110100.110105.110105001.110105001001.110105001001003": "110105001001003",
		"110100.110105.110105001.110105001001._":               "110105001001",
		"110100._._._._":                                       "110100",
		"":                                                     "",
	} {
		if got := unitOfPath(path); got != want {
			t.Errorf("unitOfPath(%q) = %q, want %q", path, got, want)
		}
	}
}
