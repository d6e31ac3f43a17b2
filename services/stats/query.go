package stats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Row is one line of a breakdown: a child unit, a category, a day or a month.
type Row struct {
	Key  string `json:"key"`
	Name string `json:"name,omitempty"`
	Figures
}

// Result is the figures of a unit (with its subtree) for a period of days.
type Result struct {
	Unit string `json:"unit"`
	From string `json:"from"`
	To   string `json:"to"`
	Figures
	ByUnit     []Row `json:"byUnit"`
	ByCategory []Row `json:"byCategory"`
	// ByDay is given for periods of up to MaxDaily days; ByMonth always.
	ByDay   []Row `json:"byDay,omitempty"`
	ByMonth []Row `json:"byMonth"`
	// Overdue lists the open overdue items, the longest overdue first (at most
	// MaxOverdue; OpenOverdue counts them all).
	Overdue []OverdueEntry `json:"overdue"`
}

// Limits of a query.
const (
	MaxDays    = 3*366 + 1 // the longest period
	MaxDaily   = 400       // the longest period broken down by day (the default period fits)
	MaxOverdue = 200
)

// Query reads the figures of unit for the days from..to (YYYY-MM-DD, inclusive),
// with children (codes of the units directly below) ranked in ByUnit. Every read is a
// counter document by _id: for a year, about one per child and thirteen for the unit.
func Query(ctx context.Context, db *mongo.Database, unit string, children []string, from, to string) (*Result, error) {
	f, err := time.Parse(time.DateOnly, from)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	t, err := time.Parse(time.DateOnly, to)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	if t.Before(f) || t.Sub(f) >= MaxDays*24*time.Hour {
		return nil, errors.New("the period must run forwards, for at most three years")
	}
	// Work out the documents once with nothing read, fetch them all at once, and
	// work the figures out again from them.
	plan := &reader{want: map[string]bool{}}
	compute(plan, unit, children, f, t)
	r := &reader{docs: map[string]*counterDoc{}}
	if err := r.fetch(ctx, db, plan.want); err != nil {
		return nil, err
	}
	res := compute(r, unit, children, f, t)
	res.Unit, res.From, res.To = unit, from, to
	return res, nil
}

// reader hands out counter documents: in planning it records which are wanted.
type reader struct {
	want map[string]bool
	docs map[string]*counterDoc
}

func (r *reader) doc(id string) *counterDoc {
	if r.want != nil {
		r.want[id] = true
		return &counterDoc{}
	}
	if d := r.docs[id]; d != nil {
		return d
	}
	return &counterDoc{}
}

// fetch reads the wanted documents by _id, a few at a time.
func (r *reader) fetch(ctx context.Context, db *mongo.Database, want map[string]bool) error {
	ids := make(chan string)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				var d counterDoc
				err := db.Collection(Coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
				mu.Lock()
				switch {
				case err == nil:
					r.docs[id] = &d
				case !errors.Is(err, mongo.ErrNoDocuments) && first == nil:
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	for id := range want {
		ids <- id
	}
	close(ids)
	wg.Wait()
	return first
}

type totals struct {
	c    Counts
	cats map[string]*Counts // nil unless wanted
}

func (t *totals) add(d *counterDoc) { t.addSign(d, 1) }

func (t *totals) addSign(d *counterDoc, sign int) {
	t.c.Add(d.Total, sign)
	if t.cats != nil {
		for _, c := range d.Cats {
			t.addCat(c.Category, c.Counts, sign)
		}
	}
}

func (t *totals) addCat(code string, c Counts, sign int) {
	x := t.cats[code]
	if x == nil {
		x = &Counts{}
		t.cats[code] = x
	}
	x.Add(c, sign)
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// period sums a unit's counters over from..to: whole years from year documents, whole
// months from month documents (or the year's month array when no categories are
// wanted), the odd days from day documents (or the month's day array).
func period(r *reader, unit string, from, to time.Time, cats bool) totals {
	t := totals{}
	if cats {
		t.cats = map[string]*Counts{}
	}
	for y := from.Year(); y <= to.Year(); y++ {
		ys, ye := later(from, date(y, 1, 1)), earlier(to, date(y, 12, 31))
		yd := r.doc(yearID(unit, fmt.Sprint(y)))
		if ys.Equal(date(y, 1, 1)) && ye.Equal(date(y, 12, 31)) {
			t.add(yd)
			continue
		}
		for m := ys.Month(); m <= ye.Month(); m++ {
			first, last := date(y, m, 1), date(y, m+1, 0)
			ms, me := later(ys, first), earlier(ye, last)
			month := fmt.Sprintf("%d-%02d", y, int(m))
			switch {
			case ms.Equal(first) && me.Equal(last) && cats:
				t.add(r.doc(monthID(unit, month)))
			case ms.Equal(first) && me.Equal(last):
				if len(yd.Months) == 12 {
					t.c.Add(yd.Months[m-1], 1)
				}
			case cats && me.Sub(ms) <= last.Sub(first)/2:
				for d := ms; !d.After(me); d = d.AddDate(0, 0, 1) {
					t.add(r.doc(dayID(unit, d.Format(time.DateOnly))))
				}
			case cats:
				// Most of the month: the month less the days outside.
				t.add(r.doc(monthID(unit, month)))
				for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
					if d.Before(ms) || d.After(me) {
						t.addSign(r.doc(dayID(unit, d.Format(time.DateOnly))), -1)
					}
				}
			default:
				md := r.doc(monthID(unit, month))
				for d := ms; !d.After(me); d = d.AddDate(0, 0, 1) {
					if len(md.Days) == 31 {
						t.c.Add(md.Days[d.Day()-1], 1)
					}
				}
			}
		}
	}
	return t
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func compute(r *reader, unit string, children []string, from, to time.Time) *Result {
	res := &Result{ByUnit: []Row{}, ByCategory: []Row{}, ByMonth: []Row{}, Overdue: []OverdueEntry{}}
	main := period(r, unit, from, to, true)
	now := r.doc(nowID(unit))
	main.c.OpenOverdue = now.Total.OpenOverdue
	for _, c := range now.Cats {
		main.addCat(c.Category, Counts{OpenOverdue: c.Counts.OpenOverdue}, 1)
	}
	res.Figures = Rates(main.c)
	res.Overdue = append(res.Overdue, now.Overdue[:min(len(now.Overdue), MaxOverdue)]...)
	for _, child := range children {
		c := period(r, child, from, to, false)
		c.c.OpenOverdue = r.doc(nowID(child)).Total.OpenOverdue
		res.ByUnit = append(res.ByUnit, Row{Key: child, Figures: Rates(c.c)})
	}
	for code, c := range main.cats {
		if *c != (Counts{}) {
			res.ByCategory = append(res.ByCategory, Row{Key: code, Figures: Rates(*c)})
		}
	}
	slices.SortFunc(res.ByCategory, func(a, b Row) int { return b.Reported - a.Reported })
	daily := to.Sub(from) < MaxDaily*24*time.Hour
	for m := date(from.Year(), from.Month(), 1); !m.After(to); m = m.AddDate(0, 1, 0) {
		md := r.doc(monthID(unit, m.Format("2006-01")))
		var mc Counts
		for d := later(m, from); !d.After(earlier(to, m.AddDate(0, 1, -1))); d = d.AddDate(0, 0, 1) {
			var dc Counts
			if len(md.Days) == 31 {
				dc = md.Days[d.Day()-1]
			}
			mc.Add(dc, 1)
			if daily {
				res.ByDay = append(res.ByDay, Row{Key: d.Format(time.DateOnly), Figures: Rates(dc)})
			}
		}
		res.ByMonth = append(res.ByMonth, Row{Key: m.Format("2006-01"), Figures: Rates(mc)})
	}
	return res
}
