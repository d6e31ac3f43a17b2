package stats

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Synthetic asks for made-up items to be counted, for benchmarks of the figures at a
// size no test city has: Items items in Grids over Year, by the projector's own
// counting. They are counted only — no incident is stored, so a rebuild removes them.
type Synthetic struct {
	Grids      []string
	Categories []string
	Items      int
	Year       int
	Seed       uint64
}

// MaxSynthetic is the most made-up items one request counts.
const MaxSynthetic = 10_000_000

// SyntheticReport says what was counted.
type SyntheticReport struct {
	Items     int     `json:"items"`
	Documents int     `json:"documents"`
	Seconds   float64 `json:"seconds"`
}

// Synthesize counts s's items into the counters (added to what is there).
func (p *Projector) Synthesize(ctx context.Context, s Synthetic) (*SyntheticReport, error) {
	f := fault.Fields{}
	if len(s.Grids) == 0 {
		f.Add("unit", "no grids below it")
	}
	if s.Items < 1 || s.Items > MaxSynthetic {
		f.Add("items", fmt.Sprintf("1 to %d", MaxSynthetic))
	}
	if s.Year < 2000 || s.Year > 2100 {
		f.Add("year", "2000 to 2100")
	}
	if len(s.Categories) == 0 {
		f.Add("categories", "at least one")
	}
	if err := f.Err("invalid_request", "invalid synthetic figures"); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	p.reset()
	cal := p.Calendar()
	r := rand.New(rand.NewPCG(s.Seed, uint64(s.Items)))
	mem := memDocs{}
	first := time.Date(s.Year, 1, 1, 0, 0, 0, 0, workday.Location())
	days := int(first.AddDate(1, 0, 0).Sub(first).Hours() / 24)
	for k := 0; k < s.Items; k++ {
		day := first.AddDate(0, 0, k*days/s.Items)
		at := day.Add(time.Duration(8*3600+r.IntN(10*3600)) * time.Second)
		it := Item{ID: uuid.NewString(), Place: s.Grids[r.IntN(len(s.Grids))], Category: s.Categories[min(len(s.Categories)-1, int(r.ExpFloat64()*4))],
			Status: incident.Reported, ReportedAt: at, Version: 1, Summary: "synthetic"}
		it.Owner, it.Level = it.Place[:12], 2
		switch x := r.IntN(1000); {
		case x < 15:
			it.Status = incident.Refused
		case x < 30:
			it.Status = incident.Duplicate
		case x < 40 && k > s.Items*99/100:
			// open and overdue: a few hundred, the most recent
			acc := at.Add(time.Hour)
			due, _ := cal.Due(acc, 1)
			it.Status, it.AcceptedAt, it.DueAt, it.Overdue = incident.InProgress, &acc, &due, true
		default:
			acc := at.Add(time.Duration(10+r.IntN(110)) * time.Minute)
			due, err := cal.Due(acc, 1)
			if err != nil {
				due = acc.Add(24 * time.Hour)
			}
			closed := acc.Add(time.Duration(1+r.IntN(7)) * time.Hour)
			if r.IntN(12) == 0 {
				closed = acc.Add(time.Duration(30+r.IntN(60)) * time.Hour)
			}
			it.Status, it.AcceptedAt, it.DueAt, it.ClosedAt = incident.Closed, &acc, &due, &closed
			it.Escalated, it.Reopened = r.IntN(50) == 0, r.IntN(40) == 0
			if r.IntN(3) > 0 {
				rated := closed.Add(time.Duration(1+r.IntN(40)) * time.Hour)
				it.RatedAt, it.Rating = &rated, []string{"satisfied", "satisfied", "satisfied", "basically_satisfied", "unsatisfied"}[r.IntN(5)]
			}
		}
		it.Measure(cal)
		count(mem, it, 1)
	}
	stored, err := all(ctx, p.DB.Collection(Coll))
	if err != nil {
		return nil, err
	}
	var models []mongo.WriteModel
	var fresh []any
	for id, d := range mem {
		if old := stored[id]; old != nil {
			merge(old, d)
			old.tidy()
			models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(old))
			continue
		}
		d.tidy()
		fresh = append(fresh, d)
	}
	if err := insert(ctx, p.DB.Collection(Coll), fresh); err != nil {
		return nil, err
	}
	if err := bulk(ctx, p.DB.Collection(Coll), models); err != nil {
		return nil, err
	}
	return &SyntheticReport{Items: s.Items, Documents: len(mem), Seconds: time.Since(start).Seconds()}, nil
}

// merge adds d's counts into into.
func merge(into, d *counterDoc) {
	into.Total.Add(d.Total, 1)
	for _, c := range d.Cats {
		into.cat(c.Category).Add(c.Counts, 1)
	}
	if d.Days != nil && into.Days == nil {
		into.Days = make([]Counts, 31)
	}
	for i := range d.Days {
		into.Days[i].Add(d.Days[i], 1)
	}
	if d.Months != nil && into.Months == nil {
		into.Months = make([]Counts, 12)
	}
	for i := range d.Months {
		into.Months[i].Add(d.Months[i], 1)
	}
	into.Overdue = append(into.Overdue, d.Overdue...)
}
