package incident

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Names is a label in the two languages the product ships.
type Names struct {
	Zh string `json:"zh"`
	En string `json:"en"`
}

// Category is a kind of incident (人/地/物/事 and their sub-categories). It carries the
// level that normally handles it, whether it is "special" (3 working days instead of
// 1), the responsible department and its Open311 service code.
type Category struct {
	Code          string     `json:"code"`
	Names         Names      `json:"names"`
	DefaultLevel  int        `json:"defaultLevel"`
	Special       bool       `json:"special"`
	ServiceCode   string     `json:"serviceCode"`
	Department    string     `json:"department"`
	Subcategories []Category `json:"subcategories,omitempty"`
}

// Catalog is the immutable set of categories.
type Catalog struct {
	// Version changes whenever the file is edited.
	Version int
	top     []Category
	byKey   map[string]Category
}

// ParseCatalog reads the categories file (schemas/categories.json) and validates it.
func ParseCatalog(data []byte) (*Catalog, error) {
	var f struct {
		Version    int        `json:"version"`
		Categories []Category `json:"categories"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("categories: %w", err)
	}
	if f.Version < 1 {
		return nil, fmt.Errorf("categories: version must be at least 1")
	}
	c := &Catalog{Version: f.Version, top: f.Categories, byKey: map[string]Category{}}
	var add func(cat Category) error
	add = func(cat Category) error {
		if cat.Code == "" || cat.Names.Zh == "" || cat.Names.En == "" {
			return fmt.Errorf("categories: %q needs a code and names in zh and en", cat.Code)
		}
		if cat.DefaultLevel < 1 || cat.DefaultLevel > 5 {
			return fmt.Errorf("categories: %s: defaultLevel must be 1..5", cat.Code)
		}
		if _, dup := c.byKey[cat.Code]; dup {
			return fmt.Errorf("categories: %s defined twice", cat.Code)
		}
		c.byKey[cat.Code] = cat
		for _, s := range cat.Subcategories {
			if err := add(s); err != nil {
				return err
			}
		}
		return nil
	}
	for _, cat := range f.Categories {
		if err := add(cat); err != nil {
			return nil, err
		}
	}
	if len(c.top) == 0 {
		return nil, fmt.Errorf("categories: none defined")
	}
	return c, nil
}

// Find returns a category or sub-category by code.
func (c *Catalog) Find(code string) (Category, bool) {
	cat, ok := c.byKey[code]
	return cat, ok
}

// All returns the top-level categories with their sub-categories.
func (c *Catalog) All() []Category { return c.top }

// Leaves lists the codes items are filed under (sub-categories, or a category without
// any), in catalogue order.
func (c *Catalog) Leaves() []string {
	var out []string
	for _, cat := range c.top {
		if len(cat.Subcategories) == 0 {
			out = append(out, cat.Code)
		}
		for _, sub := range cat.Subcategories {
			out = append(out, sub.Code)
		}
	}
	return out
}

// Codes lists every code, sorted.
func (c *Catalog) Codes() []string {
	out := make([]string, 0, len(c.byKey))
	for k := range c.byKey {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
