package stats

import (
	"math"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/schemas"
	"github.com/gridkeeper/gridkeeper/services/incident"
)

func calendar(t *testing.T) *workday.Calendar {
	t.Helper()
	c, err := schemas.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, workday.Location())
	if err != nil {
		panic(err)
	}
	return t
}

func ptr(s string) *time.Time { t := at(s); return &t }

// The metric definitions of DESIGN §3 on a hand-made set of items around National Day
// 2026 (1–7 October holidays, Saturday 10 October and Sunday 20 September make-up
// workdays, 25–27 September Mid-Autumn), every figure worked out by hand.
func TestMetricDefinitions(t *testing.T) {
	cal := calendar(t)
	items := []Item{
		// A: accepted Wed 30 Sep 10:00, due Thu 8 Oct 10:00 (the next working day),
		// closed 8 Oct 09:00 — on time; 14 + 0 + 9 = 23 working hours; rated satisfied.
		{ID: "A", Status: "closed", ReportedAt: at("2026-09-30 09:00"), AcceptedAt: ptr("2026-09-30 10:00"),
			DueAt: ptr("2026-10-08 10:00"), ClosedAt: ptr("2026-10-08 09:00"), RatedAt: ptr("2026-10-09 11:00"), Rating: "satisfied"},
		// B: accepted Fri 9 Oct 16:00, due Sat 10 Oct 16:00 (a make-up workday), closed
		// Mon 12 Oct 10:00 — late; 8 + 24 + 0 + 10 = 42 working hours; reopened once;
		// rated basically satisfied.
		{ID: "B", Status: "closed", ReportedAt: at("2026-10-09 15:00"), AcceptedAt: ptr("2026-10-09 16:00"),
			DueAt: ptr("2026-10-10 16:00"), ClosedAt: ptr("2026-10-12 10:00"), Reopened: true,
			RatedAt: ptr("2026-10-13 09:00"), Rating: "basically_satisfied"},
		// C: accepted then refused.
		{ID: "C", Status: "refused", ReportedAt: at("2026-10-09 10:00"), AcceptedAt: ptr("2026-10-09 11:00")},
		// D: merged as a duplicate before acceptance.
		{ID: "D", Status: "duplicate", ReportedAt: at("2026-10-12 08:00")},
		// E: escalated, accepted, overdue and still open.
		{ID: "E", Status: "in_progress", ReportedAt: at("2026-10-12 09:00"), AcceptedAt: ptr("2026-10-12 10:00"),
			DueAt: ptr("2026-10-13 10:00"), Escalated: true, Overdue: true},
		// F: accepted Sun 20 Sep 10:00 (a make-up workday), closed Fri 9 Oct 10:00 — late;
		// 14 + 4×24 + 0 (Mid-Autumn) + 3×24 + 0 (National Day) + 24 + 10 = 216 hours.
		{ID: "F", Status: "closed", ReportedAt: at("2026-09-20 09:00"), AcceptedAt: ptr("2026-09-20 10:00"),
			DueAt: ptr("2026-09-21 10:00"), ClosedAt: ptr("2026-10-09 10:00")},
	}
	rate := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

	oct := Sum(items, cal, "2026-10-01", "2026-10-31")
	want := Counts{Reported: 4, Refused: 1, Duplicates: 1, Escalated: 1, ResolvedOfReported: 1, Accepted: 3, DueToClose: 2,
		Closed: 1, ClosedOnTime: 0, Reopened: 1, SecondsToClose: 42 * 3600, Rated: 2, Satisfied: 1, BasicallySatisfied: 1, OpenOverdue: 1}
	if oct != want {
		t.Errorf("October counts:\n got %+v\nwant %+v", oct, want)
	}
	f := Rates(oct)
	for name, c := range map[string][2]float64{
		"closure":            {rate(f.ClosureRate), 0.5},
		"on time":            {rate(f.OnTimeRate), 0},
		"satisfaction":       {rate(f.SatisfactionRate), 1},
		"escalation":         {rate(f.EscalationRate), 0.25},
		"refusal":            {rate(f.RefusalRate), 0.25},
		"reopen":             {rate(f.ReopenRate), 1},
		"mean hours":         {rate(f.MeanHoursToClose), 42},
		"resolved of report": {rate(f.ResolvedOfReportedRate), 0.25},
	} {
		if !near(c[0], c[1]) {
			t.Errorf("October %s rate: %v, want %v", name, c[0], c[1])
		}
	}

	both := Sum(items, cal, "2026-09-01", "2026-10-31")
	if both.Reported != 6 || both.Accepted != 5 || both.DueToClose != 4 || both.Closed != 3 || both.ClosedOnTime != 1 ||
		both.SecondsToClose != (23+42+216)*3600 || both.ResolvedOfReported != 3 {
		t.Errorf("September and October: %+v", both)
	}
	if g := Rates(both); !near(rate(g.MeanHoursToClose), 281.0/3) || !near(rate(g.OnTimeRate), 0.25) || !near(rate(g.ClosureRate), 0.75) {
		t.Errorf("September and October rates: mean %v on time %v closure %v", rate(g.MeanHoursToClose), rate(g.OnTimeRate), rate(g.ClosureRate))
	}
	// No items: no rates, not 0 % or 100 %.
	if e := Rates(Counts{}); e.ClosureRate != nil || e.SatisfactionRate != nil || e.MeanHoursToClose != nil {
		t.Errorf("empty period: %+v", e)
	}
}

// An incident's history gives the item: the first acceptance — an accept, or a level
// above taking it over or handing it down — escalations, reopening, the rating; a
// reopened item is not closed.
func TestFromIncident(t *testing.T) {
	inc := &incident.Incident{ID: "i", GridID: "110105001001001", UnitID: "110105", Category: "place.road", Status: incident.InProgress,
		CreatedAt: at("2026-10-12 09:00"), ClosedAt: ptr("2026-10-13 09:00"), Reopens: 1, Overdue: true,
		Rating: &incident.Rating{Value: "unsatisfied", At: at("2026-10-14 09:00")},
		History: []incident.HistoryEntry{
			{At: at("2026-10-12 09:00"), Action: "report"},
			{At: at("2026-10-12 10:00"), Action: "escalate"},
			{At: at("2026-10-12 11:00"), Action: "takeOver"},
			{At: at("2026-10-12 12:00"), Action: "accept"},
		}}
	it := FromIncident(inc)
	if it.Place != "110105001001001" || it.AcceptedAt == nil || !it.AcceptedAt.Equal(at("2026-10-12 11:00")) || !it.Escalated ||
		!it.Reopened || it.ClosedAt != nil || it.Rating != "unsatisfied" || !it.Overdue {
		t.Errorf("item: %+v", it)
	}
}
