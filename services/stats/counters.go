package stats

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridkeeper/gridkeeper/services/org"
)

// Collections of the figures. Each is written by the projector alone and read by _id.
const (
	// Coll holds the counters: one document per unit and day, month or year, and one
	// per unit for what is true now (the open overdue items).
	Coll = "stats"
	// ItemColl holds each incident as last counted, so a change counts the difference.
	ItemColl = "stats_items"
	// JournalColl holds the projector's last batch, written whole before its parts.
	JournalColl = "stats_journal"
)

// Counter document ids: "<unit>/d/2026-10-12", "<unit>/m/2026-10", "<unit>/y/2026",
// "<unit>/now".
func dayID(unit, day string) string     { return unit + "/d/" + day }
func monthID(unit, month string) string { return unit + "/m/" + month }
func yearID(unit, year string) string   { return unit + "/y/" + year }
func nowID(unit string) string          { return unit + "/now" }

// CatCounts are a category's counters.
type CatCounts struct {
	Category string `bson:"c"`
	Counts   Counts `bson:"n"`
}

// OverdueEntry is an open overdue item as the dashboard lists it.
type OverdueEntry struct {
	ID       string     `bson:"id" json:"id"`
	Category string     `bson:"category" json:"category"`
	Grid     string     `bson:"grid" json:"gridId"`
	Owner    string     `bson:"owner" json:"unitId"`
	Level    int        `bson:"level" json:"level"`
	Status   string     `bson:"status" json:"status"`
	Urgent   bool       `bson:"urgent,omitempty" json:"urgent"`
	DueAt    *time.Time `bson:"dueAt,omitempty" json:"dueAt"`
	Summary  string     `bson:"summary,omitempty" json:"summary"`
}

// counterDoc is one counter document. Days is set on month documents (31 entries),
// Months on year documents (12), Overdue on "now" documents.
type counterDoc struct {
	ID      string         `bson:"_id"`
	Total   Counts         `bson:"total"`
	Cats    []CatCounts    `bson:"cats,omitempty"`
	Days    []Counts       `bson:"days,omitempty"`
	Months  []Counts       `bson:"months,omitempty"`
	Overdue []OverdueEntry `bson:"overdue,omitempty"`
}

func (d *counterDoc) cat(code string) *Counts {
	for i := range d.Cats {
		if d.Cats[i].Category == code {
			return &d.Cats[i].Counts
		}
	}
	d.Cats = append(d.Cats, CatCounts{Category: code})
	return &d.Cats[len(d.Cats)-1].Counts
}

// tidy drops categories, days and months with nothing counted.
func (d *counterDoc) tidy() {
	d.Cats = slices.DeleteFunc(d.Cats, func(c CatCounts) bool { return c.Counts == Counts{} })
	if !slices.ContainsFunc(d.Days, func(c Counts) bool { return c != Counts{} }) {
		d.Days = nil
	}
	if !slices.ContainsFunc(d.Months, func(c Counts) bool { return c != Counts{} }) {
		d.Months = nil
	}
	if len(d.Overdue) == 0 {
		d.Overdue = nil
	}
	slices.SortFunc(d.Cats, func(a, b CatCounts) int { return strings.Compare(a.Category, b.Category) })
	slices.SortFunc(d.Overdue, func(a, b OverdueEntry) int {
		if a.DueAt != nil && b.DueAt != nil && !a.DueAt.Equal(*b.DueAt) {
			return a.DueAt.Compare(*b.DueAt)
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// empty reports whether the document counts nothing (it is then deleted).
func (d *counterDoc) empty() bool {
	return d.Total == Counts{} && len(d.Cats) == 0 && d.Days == nil && d.Months == nil && len(d.Overdue) == 0
}

// Units returns unit and every unit above it, up to the city.
func Units(unit string) []string {
	var out []string
	for u := unit; u != ""; u = org.Parent(u) {
		out = append(out, u)
	}
	return out
}

// docs is a set of counter documents being changed: get loads one the first time.
type docs interface {
	get(id string) *counterDoc
}

// count adds (sign +1) or takes away (-1) an item's contribution in the counters of
// its grid and every unit above it.
func count(ds docs, it Item, sign int) {
	parts := Contribution(it)
	for _, u := range Units(it.Place) {
		for _, p := range parts {
			bump := func(id string) *counterDoc {
				d := ds.get(id)
				d.Total.Add(p.Counts, sign)
				d.cat(it.Category).Add(p.Counts, sign)
				return d
			}
			if p.Day == "" {
				bump(nowID(u))
				continue
			}
			bump(dayID(u, p.Day))
			m := bump(monthID(u, p.Day[:7]))
			if m.Days == nil {
				m.Days = make([]Counts, 31)
			}
			dd, _ := strconv.Atoi(p.Day[8:10])
			m.Days[dd-1].Add(p.Counts, sign)
			y := bump(yearID(u, p.Day[:4]))
			if y.Months == nil {
				y.Months = make([]Counts, 12)
			}
			mm, _ := strconv.Atoi(p.Day[5:7])
			y.Months[mm-1].Add(p.Counts, sign)
		}
		if it.OpenOverdue() {
			d := ds.get(nowID(u))
			d.Overdue = slices.DeleteFunc(d.Overdue, func(e OverdueEntry) bool { return e.ID == it.ID })
			if sign > 0 {
				d.Overdue = append(d.Overdue, OverdueEntry{ID: it.ID, Category: it.Category, Grid: it.Place, Owner: it.Owner,
					Level: it.Level, Status: string(it.Status), Urgent: it.Urgent, DueAt: it.DueAt, Summary: it.Summary})
			}
		}
	}
}
