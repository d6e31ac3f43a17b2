package org

import (
	"regexp"
	"testing"
)

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
		{"110100", "110100", true},
		{"110100", "110200001", false},
	} {
		if got := Contains(tc.root, tc.unit); got != tc.want {
			t.Errorf("Contains(%s, %s) = %v", tc.root, tc.unit, got)
		}
		// The regular expression of a stored-code query agrees with Contains.
		if ValidCode(tc.unit) {
			if got := regexp.MustCompile(SubtreeRegex(tc.root)).MatchString(tc.unit); got != tc.want {
				t.Errorf("SubtreeRegex(%s) matches %s = %v", tc.root, tc.unit, got)
			}
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

// ID-card numbers: the check character of GB 11643 (ISO 7064 MOD 11-2), the birth date,
// the shape.
func TestIDCard(t *testing.T) {
	for _, c := range []struct {
		id string
		ok bool
	}{
		{"11010519491231002X", true}, // the standard's example, check character X
		{"440524188001010014", true},
		{"110105194912310021", false}, // wrong check character
		{"11010519491331002X", false}, // month 13
		{"11010519490230002X", false}, // 30 February
		{"11010519491231002x", false}, // lower case: NormalizeIDCard first
		{"01010519491231002X", false}, // region cannot start with 0
		{"1101051949123100", false},
		{"", false},
		{"11010519491231002X1", false},
	} {
		if got := ValidIDCard(c.id); got != c.ok {
			t.Errorf("ValidIDCard(%q) = %v, want %v", c.id, got, c.ok)
		}
	}
	if got := IDCardCheck("11010519491231002"); got != 'X' {
		t.Errorf("check of the standard's example: %c", got)
	}
	if ValidIDCard(NormalizeIDCard(" 11010519491231002x ")) != true {
		t.Errorf("normalized lower-case x")
	}
	if MaskIDCard("11010519491231002X") != "110105********002X" || MaskPhone("13812345678") != "138****5678" {
		t.Errorf("masks: %s %s", MaskIDCard("11010519491231002X"), MaskPhone("13812345678"))
	}
}
