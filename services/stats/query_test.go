package stats

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The counters read back for any period — whole years, whole months from month or
// year documents, odd days from day documents or as a month less the days outside —
// give exactly the sums over the items themselves, in total, by category, by child
// unit and by day.
func TestQueryEqualsSumOverItems(t *testing.T) {
	cal := calendar(t)
	r := rand.New(rand.NewPCG(3, 4))
	grids := []string{"110105001001001", "110105001001002", "110105001002001", "110105002001001"}
	cats := []string{"place.road", "place.sanitation", "thing.facility"}
	var items []Item
	mem := memDocs{}
	start := time.Date(2024, 11, 1, 9, 0, 0, 0, time.UTC)
	for k := 0; k < 600; k++ {
		at := start.Add(time.Duration(r.IntN(500*24)) * time.Hour)
		it := Item{ID: fmt.Sprint(k), Place: grids[r.IntN(len(grids))], Category: cats[r.IntN(len(cats))], Status: "reported", ReportedAt: at}
		switch r.IntN(5) {
		case 0:
			it.Status = "refused"
		case 1, 2, 3:
			acc := at.Add(time.Duration(r.IntN(72)) * time.Hour)
			due, _ := cal.Due(acc, 1)
			it.Status, it.AcceptedAt, it.DueAt = "in_progress", &acc, &due
			if r.IntN(4) > 0 {
				closed := acc.Add(time.Duration(1+r.IntN(60)) * time.Hour)
				it.Status, it.ClosedAt = "closed", &closed
				if r.IntN(2) == 0 {
					rated := closed.Add(time.Duration(r.IntN(100)) * time.Hour)
					it.RatedAt, it.Rating = &rated, []string{"satisfied", "basically_satisfied", "unsatisfied"}[r.IntN(3)]
				}
			} else {
				it.Overdue = r.IntN(2) == 0
			}
		}
		it.Measure(cal)
		items = append(items, it)
		count(mem, it, 1)
	}
	rd := &reader{docs: map[string]*counterDoc{}}
	for id, d := range mem {
		d.tidy()
		rd.docs[id] = d
	}
	in := func(unit string) []Item {
		var out []Item
		for _, it := range items {
			if len(it.Place) >= len(unit) && it.Place[:len(unit)] == unit {
				out = append(out, it)
			}
		}
		return out
	}
	periods := [][2]string{{"2025-01-01", "2025-12-31"}, {"2025-03-15", "2025-09-14"}, {"2025-03-02", "2025-03-29"},
		{"2025-02-10", "2025-02-11"}, {"2024-11-20", "2026-02-03"}, {"2025-06-01", "2025-06-30"}, {"2025-12-31", "2026-01-01"}}
	for i := 0; i < 20; i++ {
		f := start.AddDate(0, 0, r.IntN(480))
		periods = append(periods, [2]string{f.Format(time.DateOnly), f.AddDate(0, 0, r.IntN(200)).Format(time.DateOnly)})
	}
	for _, unit := range []string{"110105", "110105001", "110105001001", "110105001001002"} {
		for _, p := range periods {
			f, _ := time.Parse(time.DateOnly, p[0])
			to, _ := time.Parse(time.DateOnly, p[1])
			var kids []string
			if unit == "110105001" {
				kids = []string{"110105001001", "110105001002"}
			}
			got := compute(rd, unit, kids, f, to)
			if want := Sum(in(unit), cal, p[0], p[1]); got.Counts != want {
				t.Fatalf("%s %v:\n got %+v\nwant %+v", unit, p, got.Counts, want)
			}
			for _, row := range got.ByCategory {
				var sub []Item
				for _, it := range in(unit) {
					if it.Category == row.Key {
						sub = append(sub, it)
					}
				}
				if want := Sum(sub, cal, p[0], p[1]); row.Counts != want {
					t.Fatalf("%s %v category %s:\n got %+v\nwant %+v", unit, p, row.Key, row.Counts, want)
				}
			}
			for _, row := range got.ByUnit {
				if want := Sum(in(row.Key), cal, p[0], p[1]); row.Counts != want {
					t.Fatalf("%s %v child %s:\n got %+v\nwant %+v", unit, p, row.Key, row.Counts, want)
				}
			}
			var days Counts
			for _, row := range got.ByDay {
				days.Add(row.Counts, 1)
			}
			if got.ByDay == nil { // a long period: by month only
				for _, row := range got.ByMonth {
					days.Add(row.Counts, 1)
				}
			}
			want := Sum(in(unit), cal, p[0], p[1])
			want.OpenOverdue = 0
			if days != want {
				t.Fatalf("%s %v: the days add up to %+v, want %+v", unit, p, days, want)
			}
		}
	}
}
