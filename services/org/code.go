// Package org owns the five-level tree of units (grid, community, street, district,
// city) with its hierarchical codes, the users who work in it with their roles, and
// the scope rule: a user reads and changes only its home unit's subtree, narrowed by
// role.
package org

import (
	"fmt"
	"strings"
)

// Level is a unit's height in the tree: 1 grid … 5 city.
type Level int

// The five levels, bottom up.
const (
	Grid      Level = 1
	Community Level = 2
	Street    Level = 3
	District  Level = 4
	City      Level = 5
)

var levelNames = map[Level]string{Grid: "grid", Community: "community", Street: "street", District: "district", City: "city"}

func (l Level) String() string {
	if n, ok := levelNames[l]; ok {
		return n
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// LevelOf tells a code's level from its shape, in the style of the national
// administrative codes: city and district 6 digits (a city ends in "00"), street +3,
// community +3, grid +3.
func LevelOf(code string) (Level, error) {
	for _, r := range code {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("unit code %q: digits only", code)
		}
	}
	switch len(code) {
	case 6:
		if strings.HasSuffix(code, "00") {
			if strings.HasSuffix(code, "0000") {
				return 0, fmt.Errorf("unit code %q: a province code is not a unit", code)
			}
			return City, nil
		}
		return District, nil
	case 9:
		return Street, nil
	case 12:
		return Community, nil
	case 15:
		return Grid, nil
	}
	return 0, fmt.Errorf("unit code %q: must have 6, 9, 12 or 15 digits", code)
}

// ValidCode reports whether code is a well-formed unit code.
func ValidCode(code string) bool {
	_, err := LevelOf(code)
	return err == nil
}

// Parent returns the code of the unit above, or "" for a city.
func Parent(code string) string {
	l, err := LevelOf(code)
	if err != nil {
		return ""
	}
	switch l {
	case Grid, Community, Street:
		return code[:len(code)-3]
	case District:
		return code[:4] + "00"
	}
	return ""
}

// CityOf returns the city a unit belongs to.
func CityOf(code string) string {
	if len(code) < 4 {
		return ""
	}
	return code[:4] + "00"
}

// Contains reports whether unit is root or inside root's subtree.
func Contains(root, unit string) bool {
	rl, err := LevelOf(root)
	if err != nil || !ValidCode(unit) {
		return false
	}
	if rl == City {
		return CityOf(unit) == root
	}
	return strings.HasPrefix(unit, root)
}

// SubtreeRegex is a regular expression matching the codes of unit's subtree (unit
// and every unit below it), for a query on a stored code. A city's code is not a
// prefix of its districts' (110100 above 110105): its subtree is the codes starting
// with its first four digits. Codes are digits only, so nothing needs escaping.
func SubtreeRegex(unit string) string {
	if l, err := LevelOf(unit); err == nil && l == City {
		return "^" + unit[:4]
	}
	return "^" + unit
}

// CommunityOf returns the community of a grid or community, or "" above that.
func CommunityOf(code string) string {
	l, err := LevelOf(code)
	if err != nil || l > Community {
		return ""
	}
	return code[:12]
}

// PartitionKey is the immutable key that decides which writer applies commands on
// records of this unit: the community for grids and communities (so a community's
// records and its invariants share a writer, and an incident keeps its writer when it
// escalates), the unit itself above.
func PartitionKey(code string) string {
	if c := CommunityOf(code); c != "" {
		return c
	}
	return code
}

// Path returns the five codes from city down to grid for a unit, "_" where the unit
// sits above that level. It is used as the scope part of NATS subjects, so a subtree
// is a subject filter.
func Path(code string) [5]string {
	p := [5]string{"_", "_", "_", "_", "_"}
	l, err := LevelOf(code)
	if err != nil {
		return p
	}
	p[0] = CityOf(code)
	if l <= District {
		p[1] = code[:6]
	}
	if l <= Street {
		p[2] = code[:9]
	}
	if l <= Community {
		p[3] = code[:12]
	}
	if l == Grid {
		p[4] = code
	}
	return p
}

// PathSubject is Path joined with dots.
func PathSubject(code string) string {
	p := Path(code)
	return strings.Join(p[:], ".")
}

// SubtreeFilter returns the NATS subject filter (five tokens) matching every path
// inside code's subtree.
func SubtreeFilter(code string) string {
	p := Path(code)
	l, _ := LevelOf(code)
	// Keep the tokens down to the unit's own level and wildcard those below it.
	keep := 5 - int(l) + 1
	for i := keep; i < 5; i++ {
		p[i] = "*"
	}
	return strings.Join(p[:], ".")
}

// UserPath is the scope path of records that belong to one user rather than to a
// place (conflicts reported to their author, notifications): "u.<login>._._._".
func UserPath(login string) string { return "u." + login + "._._._" }
