package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/pkg/testrig"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
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
