package org

import "testing"

func TestLevelsAndParents(t *testing.T) {
	for _, tc := range []struct {
		code   string
		level  Level
		parent string
		key    string
		path   string
		filter string
	}{
		{"110100", City, "", "110100", "110100._._._._", "110100.*.*.*.*"},
		{"110105", District, "110100", "110105", "110100.110105._._._", "110100.110105.*.*.*"},
		{"110105001", Street, "110105", "110105001", "110100.110105.110105001._._", "110100.110105.110105001.*.*"},
		{"110105001001", Community, "110105001", "110105001001", "110100.110105.110105001.110105001001._", "110100.110105.110105001.110105001001.*"},
		{"110105001001003", Grid, "110105001001", "110105001001", "110100.110105.110105001.110105001001.110105001001003", "110100.110105.110105001.110105001001.110105001001003"},
	} {
		l, err := LevelOf(tc.code)
		if err != nil || l != tc.level {
			t.Errorf("LevelOf(%s) = %v, %v; want %v", tc.code, l, err, tc.level)
		}
		if p := Parent(tc.code); p != tc.parent {
			t.Errorf("Parent(%s) = %q, want %q", tc.code, p, tc.parent)
		}
		if k := PartitionKey(tc.code); k != tc.key {
			t.Errorf("PartitionKey(%s) = %q, want %q", tc.code, k, tc.key)
		}
		if p := PathSubject(tc.code); p != tc.path {
			t.Errorf("PathSubject(%s) = %q, want %q", tc.code, p, tc.path)
		}
		if f := SubtreeFilter(tc.code); f != tc.filter {
			t.Errorf("SubtreeFilter(%s) = %q, want %q", tc.code, f, tc.filter)
		}
	}
	for _, bad := range []string{"", "11010", "110000", "1101050011", "11010500100100a", "１１０１００"} {
		if _, err := LevelOf(bad); err == nil {
			t.Errorf("LevelOf(%q) accepted", bad)
		}
	}
}

func TestContains(t *testing.T) {
	for _, tc := range []struct {
		root, unit string
		want       bool
	}{
		{"110100", "110105001001003", true},
		{"110100", "120105001001003", false},
		{"110105", "110105001", true},
		{"110105", "110106001", false},
		{"110105001001", "110105001001003", true},
		{"110105001001", "110105001002001", false},
		{"110105001001003", "110105001001003", true},
		{"110105001001003", "110105001001", false},
		{"110105001001003", "110105001001004", false},
		{"110105", "nonsense", false},
	} {
		if got := Contains(tc.root, tc.unit); got != tc.want {
			t.Errorf("Contains(%s, %s) = %v", tc.root, tc.unit, got)
		}
	}
}

func TestActorScope(t *testing.T) {
	a := Actor{UserID: "d", Roles: []string{RoleDispatcher}, UnitID: "110105001001"}
	if !a.Sees("110105001001002") || a.Sees("110105001002001") || a.Sees("110105001") {
		t.Error("a community dispatcher sees exactly its community's subtree")
	}
	if a.IsGridWorker() || !a.Has(RoleDispatcher, RoleAdmin) || a.Has(RoleAdmin) {
		t.Error("roles")
	}
	if !SystemActor("x").Sees("999999") {
		t.Error("the system sees all")
	}
}
