package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/pkg/testrig"
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
