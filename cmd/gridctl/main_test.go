package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/pkg/testrig"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/schemas"
)

func TestMain(m *testing.M) { os.Exit(testrig.Main(m)) }

func ctl(h *nodetest.Harness, login string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	env := map[string]string{"GRID_URL": h.URL, "GRID_LOGIN": login, "GRID_PASSWORD": nodetest.Password}
	code := run(args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestGridctlCreatesUnitsAndUsers(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	grid := nodetest.GridA(7)
	if code, out, errs := ctl(h, "admin", "unit", "create", grid, "第七网格"); code != 0 || !strings.Contains(out, grid) {
		t.Fatalf("unit create: %d %s %s", code, out, errs)
	}
	if code, out, errs := ctl(h, "admin", "user", "create", "newworker", "--name", "新网格员", "--role", "grid_manager,info_collector",
		"--unit", grid, "--password", "a-long-password"); code != 0 {
		t.Fatalf("user create: %d %s %s", code, out, errs)
	}
	if code, out, _ := ctl(h, "admin", "unit", "list"); code != 0 || !strings.Contains(out, "第七网格") {
		t.Errorf("unit list: %d %s", code, out)
	}
	// The new user can log in and sees its grid as its unit.
	var env = map[string]string{"GRID_URL": h.URL, "GRID_LOGIN": "newworker", "GRID_PASSWORD": "a-long-password"}
	var out bytes.Buffer
	if code := run([]string{"whoami"}, func(k string) string { return env[k] }, &out, &out); code != 0 || !strings.Contains(out.String(), grid) {
		t.Errorf("new user whoami: %d %s", code, out.String())
	}

	for _, tc := range []struct {
		name  string
		login string
		args  []string
		want  string
	}{
		{"bad code", "admin", []string{"unit", "create", "12345", "x"}, "invalid_args"},
		{"no parent", "admin", []string{"unit", "create", "110105009001", "x"}, "no_parent"},
		{"duplicate login", "admin", []string{"user", "create", "newworker", "--name", "x", "--role", "grid_manager", "--unit", grid, "--password", "a-long-password"}, "already_exists"},
		{"unknown role", "admin", []string{"user", "create", "bob", "--name", "x", "--role", "king", "--unit", grid, "--password", "a-long-password"}, "unknown role"},
		{"short password", "admin", []string{"user", "create", "bob", "--name", "x", "--role", "grid_manager", "--unit", grid, "--password", "short"}, "weak_password"},
		{"not an admin", "dispatcher", []string{"unit", "create", nodetest.GridA(8), "x"}, "403"},
		{"wrong password", "nobody", []string{"unit", "list"}, "invalid_credentials"},
	} {
		code, _, errs := ctl(h, tc.login, tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want failure mentioning %q", tc.name, code, errs, tc.want)
		}
	}
}

func TestGridctlMovesAUser(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(2)
	if code, out, errs := ctl(h, "admin", "user", "move", "worker1", "--unit", nodetest.GridA(2)); code != 0 || !strings.Contains(out, "moved") {
		t.Fatalf("user move: %d %s %s", code, out, errs)
	}
	if code, _, errs := ctl(h, "admin", "user", "move", "worker1", "--unit", "110105001001077"); code == 0 || !strings.Contains(errs, "no_unit") {
		t.Errorf("move to a missing unit: %d %s", code, errs)
	}
}

func TestGridctlRefusalReport(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	d := h.Login("dispatcher", "desk")
	w := h.Login("worker1", "w1")
	id := "019ac4a2-7b3e-7c41-9e2f-5a1b2c3d4e5f"
	args := nodetest.Report(id)
	if _, r := w.Push(w.Queue([]string{"incident.report"}, []any{args})); r.Results[0].Status != "applied" {
		t.Fatalf("report: %+v", r)
	}
	if _, r := d.Push(d.Queue([]string{"incident.refuse"}, []any{map[string]any{"incidentId": id, "reason": "不属受理范围"}})); r.Results[0].Status != "applied" {
		t.Fatalf("refuse: %+v", r)
	}
	month := time.Now().In(workday.Location()).Format("2006-01")
	code, out, errs := ctl(h, "discipline", "report", "refusals", "--month", month)
	if code != 0 || !strings.Contains(out, "refusals "+month) || !strings.Contains(out, nodetest.CommunityA) || !strings.Contains(out, ": 1, 0 filed late") {
		t.Errorf("report: %d %q %q", code, out, errs)
	}
	code, out, errs = ctl(h, "discipline", "report", "refusals", "--month", month, "--csv")
	if code != 0 || !strings.HasPrefix(out, "month,unit,incident") || !strings.Contains(out, id) {
		t.Errorf("csv: %d %q %q", code, out, errs)
	}
	if code, _, errs := ctl(h, "dispatcher", "report", "refusals"); code == 0 || !strings.Contains(errs, "403") {
		t.Errorf("a dispatcher: %d %q", code, errs)
	}
}

// An admin loads next year's calendar with gridctl: deadlines that fall into it count
// its holidays at once; a malformed or mismatched file is refused and loads nothing.
func TestGridctlLoadsACalendarYear(t *testing.T) {
	h := nodetest.Start(t, func(_ *node.Config, o *node.Options) {
		// Thursday 2026-12-31 10:00, a working day: 1 working day later is in 2027.
		at := time.Date(2026, 12, 31, 10, 0, 0, 0, workday.Location())
		o.Now = func() time.Time { return at }
	})
	h.Org(1)
	dir := t.TempDir()
	year := `{"year": 2027, "timezone": "Asia/Shanghai", "source": "test notice",
  "holidays": [{"name": "元旦 New Year", "from": "2027-01-01", "to": "2027-01-03"}],
  "makeup_workdays": []}`
	good := filepath.Join(dir, "cn-2027.json")
	bad := filepath.Join(dir, "bad.json")
	wrong := filepath.Join(dir, "wrong.json")
	os.WriteFile(good, []byte(year), 0o600)
	os.WriteFile(bad, []byte(strings.Replace(year, `"2027-01-03"`, `"2027-13-03"`, 1)), 0o600)
	os.WriteFile(wrong, []byte(strings.Replace(year, `"timezone"`, `"tz"`, 1)), 0o600)
	accept := func(device string) time.Time {
		t.Helper()
		w, d := h.Login("worker1", "w-"+device), h.Login("dispatcher", "d-"+device)
		id := uuid.Must(uuid.NewV7()).String()
		args := nodetest.Report(id)
		args["category"] = "place.sanitation"
		if _, r := w.Push(w.Queue([]string{"incident.report"}, []any{args})); r.Results[0].Status != "applied" {
			t.Fatalf("report: %+v", r)
		}
		if _, r := d.Push(d.Queue([]string{"incident.accept"}, []any{map[string]any{"incidentId": id}})); r.Results[0].Status != "applied" {
			t.Fatalf("accept: %+v", r)
		}
		var inc struct{ DueAt time.Time }
		d.Do("GET", "/v1/incidents/"+id, nil, &inc)
		return inc.DueAt
	}
	// Without 2027, counting falls back to plain days: due New Year's Day.
	if due := accept("a"); !due.Equal(time.Date(2027, 1, 1, 10, 0, 0, 0, workday.Location())) {
		t.Errorf("due without a 2027 calendar: %v", due)
	}
	for _, c := range []struct{ who, file, want string }{
		{"admin", bad, "invalid_calendar"},
		{"admin", wrong, "invalid_calendar"},
		{"admin", filepath.Join(dir, "missing.json"), "no such file"},
		{"dispatcher", good, "403"},
	} {
		if code, _, errs := ctl(h, c.who, "calendar", "load", c.file); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("load %s as %s: %d %q, want %s", filepath.Base(c.file), c.who, code, errs, c.want)
		}
	}
	if code, out, errs := ctl(h, "admin", "calendar", "load", good); code != 0 || !strings.Contains(out, "calendar 2027 loaded: 1 holidays") {
		t.Fatalf("load: %d %q %q", code, out, errs)
	}
	if code, out, _ := ctl(h, "admin", "calendar", "list"); code != 0 || !strings.Contains(out, "[2025 2026 2027]") || !strings.Contains(out, "admin: [2027]") {
		t.Errorf("list: %d %q", code, out)
	}
	// With 2027 loaded: 1-3 January are holidays, so due Monday 4 January 10:00.
	if due := accept("b"); !due.Equal(time.Date(2027, 1, 4, 10, 0, 0, 0, workday.Location())) {
		t.Errorf("due with the 2027 calendar: %v", due)
	}
}

// gridctl prints the rules in force and replaces one document, keeping the other.
func TestGridctlRules(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	code, out, errs := ctl(h, "admin", "rules", "get")
	if code != 0 || !strings.Contains(out, `"capabilities"`) || !strings.Contains(out, `"place.sanitation"`) {
		t.Fatalf("rules get: %d %q", code, errs)
	}
	data, err := schemas.Files.ReadFile("categories.json")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "categories.json")
	os.WriteFile(file, []byte(strings.Replace(string(data), `"version": 1`, `"version": 2`, 1)), 0o600)
	if code, out, errs := ctl(h, "admin", "rules", "put", "--categories", file); code != 0 || !strings.Contains(out, "rules version 2 in force") {
		t.Fatalf("rules put: %d %q %q", code, out, errs)
	}
	if code, _, errs := ctl(h, "admin", "rules", "put", "--categories", file); code == 0 || !strings.Contains(errs, "stale_version") {
		t.Errorf("the same version again: %d %q", code, errs)
	}
	if code, _, errs := ctl(h, "admin", "rules", "put"); code == 0 || !strings.Contains(errs, "usage") {
		t.Errorf("no file: %d %q", code, errs)
	}
}

// Key rotation with gridctl: a new key printed, the node restarted with it (the old
// one kept as previous), every stored number resealed.
func TestGridctlKeys(t *testing.T) {
	code, key, _ := ctl(&nodetest.Harness{URL: "http://127.0.0.1:1"}, "admin", "keys", "new")
	if code != 0 || len(strings.TrimSpace(key)) != 64 {
		t.Fatalf("keys new: %d %q", code, key)
	}
	h := nodetest.Start(t, nil)
	h.Org(1)
	w := h.Login("worker1", "phone-g")
	if _, r := w.Push(w.Queue([]string{"household.create"}, []any{map[string]any{"householdId": "hh-g1", "building": "1号楼",
		"members": []any{map[string]any{"name": "赵六", "idCard": "11010519491231002X"}}}})); r.Results[0].Status != "applied" {
		t.Fatalf("create: %+v", r.Results[0])
	}
	h.Restart(func(c *node.Config, _ *node.Options) {
		c.DataKey, c.DataKeysOld = strings.TrimSpace(key), nodetest.TestDataKey
	})
	if code, out, errs := ctl(h, "admin", "keys", "reseal"); code != 0 || !strings.Contains(out, "under an earlier key: 1") || !strings.Contains(out, ": 1\n") {
		t.Errorf("keys reseal: %d %q %q", code, out, errs)
	}
	if code, _, errs := ctl(h, "worker1", "keys", "reseal"); code == 0 || !strings.Contains(errs, "403") {
		t.Errorf("a worker reseals: %d %q", code, errs)
	}
}

// A household CSV with bad rows: reported with their line numbers and nothing
// imported; with --skip-bad the good ones are; a second run stores nothing twice; the
// export has the households with personal numbers masked.
func TestGridctlImportExport(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(2)
	g1, g2 := nodetest.GridA(1), nodetest.GridA(2)
	csv := "householdId,gridId,building,unit,room,address,householdTags,residentId,name,relation,gender,birthDate,idCard,phone,floating,residentTags\n" +
		"hh-i1," + g1 + ",1号楼,1单元,101,,elderly_alone,r-1,张大爷,head,male,1949-12-31,11010519491231002X,13812345678,false,\n" +
		"hh-i2," + g2 + ",2号楼,,202,,,r-2,李四,head,,,,,false,low_income\n" +
		"hh-i2," + g2 + ",2号楼,,202,,,r-3,李小四,child,,,,,true,\n" +
		"hh-bad," + g1 + ",3号楼,,303,,,r-4,王五,head,,,110105194912310021,,false,\n" +
		"hh-nogrid,110105001001099,4号楼,,404,,,r-5,赵六,head,,,,,false,\n" +
		"hh-i3," + g1 + ",5号楼,,505,,,,,,,,,,,\n"
	file := filepath.Join(t.TempDir(), "households.csv")
	os.WriteFile(file, []byte(csv), 0o600)
	count := func() int64 {
		n, _ := h.Node.DB.Collection("households").CountDocuments(t.Context(), map[string]any{})
		return n
	}
	code, out, errs := ctl(h, "admin", "import", "households", file)
	if code == 0 || !strings.Contains(out, "line 5: household hh-bad: resident 王五: idCard") || !strings.Contains(out, "line 6: household hh-nogrid") ||
		!strings.Contains(errs, "nothing imported") {
		t.Fatalf("import with bad rows: %d %q %q", code, out, errs)
	}
	if n := count(); n != 0 {
		t.Fatalf("a file with bad rows imported %d households", n)
	}
	if code, out, errs := ctl(h, "admin", "import", "households", file, "--skip-bad"); code != 0 || !strings.Contains(out, "imported 3 households (0 already there, 2 skipped as bad)") {
		t.Fatalf("--skip-bad: %d %q %q", code, out, errs)
	}
	if code, out, _ := ctl(h, "admin", "import", "households", file, "--skip-bad"); code != 0 || !strings.Contains(out, "imported 0 households (3 already there") {
		t.Errorf("a second import: %d %q", code, out)
	}
	if n := count(); n != 3 {
		t.Errorf("households: %d, want 3", n)
	}
	if code, _, errs := ctl(h, "dispatcher", "import", "households", file); code == 0 || !strings.Contains(errs, "403") {
		t.Errorf("a dispatcher imports: %d %q", code, errs)
	}
	code, out, errs = ctl(h, "dispatcher", "export", "households")
	if code != 0 || !strings.HasPrefix(out, "householdId,gridId,") || strings.Count(out, "\n") != 5 ||
		!strings.Contains(out, "110105********002X") || strings.Contains(out, "13812345678") || !strings.Contains(out, "138****5678") {
		t.Errorf("export: %d %q %q", code, out, errs)
	}
	if code, out, _ := ctl(h, "dispatcher", "export", "visits"); code != 0 || !strings.HasPrefix(out, "visitId,") {
		t.Errorf("export visits: %d %q", code, out)
	}
	if code, out, _ := ctl(h, "dispatcher", "export", "points"); code != 0 || !strings.HasPrefix(out, "entry,volunteerId") {
		t.Errorf("export points: %d %q", code, out)
	}
	if code, _, errs := ctl(h, "dispatcherb", "export", "households", "--unit", nodetest.CommunityA); code == 0 || !strings.Contains(errs, "403") {
		t.Errorf("another community exports: %d %q", code, errs)
	}
}
