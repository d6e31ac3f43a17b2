package incident

import (
	"encoding/json"
	"fmt"
)

// Matrix is the category × level capability matrix (schemas/capabilities.json): which
// levels can resolve each category. The router passes an item up until it reaches a
// level that can.
type Matrix struct {
	Version int
	rows    map[string][5]bool
	catalog *Catalog
}

// ParseMatrix reads the matrix and checks it against the catalogue: a row per
// sub-category, five levels each, and the lowest level that can resolve a category is
// its default level.
func ParseMatrix(data []byte, cat *Catalog) (*Matrix, error) {
	var f struct {
		Version int              `json:"version"`
		Matrix  map[string][]int `json:"matrix"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	if f.Version < 1 {
		return nil, fmt.Errorf("capabilities: version must be at least 1")
	}
	m := &Matrix{Version: f.Version, rows: map[string][5]bool{}, catalog: cat}
	for code, row := range f.Matrix {
		c, ok := cat.Find(code)
		if !ok {
			return nil, fmt.Errorf("capabilities: %s is not a category", code)
		}
		if len(row) != 5 {
			return nil, fmt.Errorf("capabilities: %s: five levels (grid … city), got %d", code, len(row))
		}
		var r [5]bool
		lowest := 0
		for i, v := range row {
			if v != 0 && v != 1 {
				return nil, fmt.Errorf("capabilities: %s: each level is 0 or 1", code)
			}
			r[i] = v == 1
			if r[i] && lowest == 0 {
				lowest = i + 1
			}
		}
		if lowest != c.DefaultLevel {
			return nil, fmt.Errorf("capabilities: %s: the lowest level that can resolve it is %d, but its defaultLevel is %d", code, lowest, c.DefaultLevel)
		}
		m.rows[code] = r
	}
	for _, top := range cat.All() {
		for _, sub := range top.Subcategories {
			if _, ok := m.rows[sub.Code]; !ok {
				return nil, fmt.Errorf("capabilities: no row for %s", sub.Code)
			}
		}
	}
	return m, nil
}

// CanResolve reports whether level can resolve category. A category without a row (a
// top-level one) can be resolved from its default level up.
func (m *Matrix) CanResolve(category string, level int) bool {
	if level < 1 || level > 5 {
		return false
	}
	if r, ok := m.rows[category]; ok {
		return r[level-1]
	}
	c, ok := m.catalog.Find(category)
	return ok && level >= c.DefaultLevel
}

// Target is the level an item of category at level should be handled at: level
// itself when it can resolve it, else the next level up that can (the city when none
// can).
func (m *Matrix) Target(category string, level int) int {
	for l := max(level, 1); l <= 5; l++ {
		if m.CanResolve(category, l) {
			return l
		}
	}
	return 5
}
