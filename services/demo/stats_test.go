package demo

import (
	"testing"

	"github.com/gridkeeper/gridkeeper/services/stats"
)

// The demo year seen through the dashboard's figures: "469 of 476" resolved of
// reported, as the source text says; and a closure and on-time rate a year of work
// plausibly has.
func TestDemoFigures(t *testing.T) {
	cal := calendar(t)
	city := build(cal)
	items := make([]stats.Item, len(city.incidents))
	for i := range city.incidents {
		items[i] = stats.FromIncident(&city.incidents[i])
	}
	c := stats.Sum(items, cal, "2000-01-01", "2100-12-31")
	f := stats.Rates(c)
	if c.Reported != Incidents || c.ResolvedOfReported != Resolved {
		t.Errorf("resolved of reported: %d of %d, want %d of %d", c.ResolvedOfReported, c.Reported, Resolved, Incidents)
	}
	if c.Closed != Resolved || c.DueToClose < Resolved || c.DueToClose > Incidents || f.OnTimeRate == nil || *f.OnTimeRate < 0.8 || *f.OnTimeRate >= *f.ClosureRate {
		t.Errorf("closed %d of %d due, on time %v", c.Closed, c.DueToClose, f.OnTimeRate)
	}
	if f.SatisfactionRate == nil || c.Rated < Resolved/2 || c.Unsatisfied != 0 || *f.SatisfactionRate != 1 {
		t.Errorf("ratings: %d of %d closed rated, satisfaction %v", c.Rated, c.Closed, f.SatisfactionRate)
	}
	if f.MeanHoursToClose == nil || *f.MeanHoursToClose <= 0 {
		t.Errorf("mean working hours to close: %v", f.MeanHoursToClose)
	}
	t.Logf("demo: %d of %d resolved, closure %.3f, on time %.3f, mean %.1f working hours, %d rated (%d basically satisfied)",
		c.ResolvedOfReported, c.Reported, *f.ClosureRate, *f.OnTimeRate, *f.MeanHoursToClose, c.Rated, c.BasicallySatisfied)
}
