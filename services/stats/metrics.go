// Package stats computes the figures of DESIGN §3 that the district dashboard shows —
// closure rate 结案率, on-time rate 按期结案率, satisfaction 满意率, escalation,
// refusal and reopen rates, mean working hours to close, open overdue items, and the
// plain "resolved of reported" — per unit (with its subtree), period and category.
//
// Every figure is a sum over items of what each item contributes, given the item as it
// is now (Contribution). Counters kept live by a projector and counters rebuilt from
// the stored items are therefore the same sums of the same contributions.
package stats

import (
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/incident"
)

// Item is what the figures need of an incident, as it is now.
type Item struct {
	ID       string
	Place    string // the unit where it happened (its grid); its figures count there and above
	Category string
	Status   incident.Status

	ReportedAt time.Time
	AcceptedAt *time.Time // first acceptance: it enters the period's due-to-close then
	ClosedAt   *time.Time // set while closed
	DueAt      *time.Time // the due time in force when it closed (or now)
	RatedAt    *time.Time
	Rating     string // satisfied, basically_satisfied, unsatisfied

	Escalated bool // passed to a higher level by a person or a missed urgent deadline
	Reopened  bool // reopened at least once (verification failed, or rated unsatisfied)
	Overdue   bool // marked overdue and still open

	// For the list of open overdue items, and to skip stale changes.
	Version int64
	Owner   string // the unit that owns it now
	Level   int
	Urgent  bool
	Summary string // the first words of the description

	// WorkSeconds is the working time from first acceptance to close (Measure), kept
	// with the item so that taking it out of the counters takes out what went in,
	// whatever the calendar says by then.
	WorkSeconds int64
}

// Measure sets the working time to close of a closed item by cal (plain time where
// the calendar does not cover the span).
func (it *Item) Measure(cal *workday.Calendar) {
	it.WorkSeconds = 0
	if it.Status != incident.Closed || it.ClosedAt == nil || it.AcceptedAt == nil {
		return
	}
	if d, err := cal.WorkingDuration(*it.AcceptedAt, *it.ClosedAt); err == nil {
		it.WorkSeconds = int64(d / time.Second)
	} else {
		it.WorkSeconds = int64(it.ClosedAt.Sub(*it.AcceptedAt) / time.Second)
	}
}

// Counts are counters of a unit for a day (stored under two-letter names: a month's
// counters hold a few hundred of them, and reads by _id cost by the size), summed over the items of its subtree.
// Reported, Refused, Duplicates, Escalated and ResolvedOfReported count items by the
// day they were reported; Accepted, DueToClose, Closed, ClosedOnTime, Reopened and
// SecondsToClose by the day they were first accepted; Rated and its parts by the day of
// the rating; OpenOverdue is a gauge (items open and overdue now), kept on no day.
type Counts struct {
	Reported           int `json:"reported" bson:"rp,omitempty"`
	Refused            int `json:"refused" bson:"rf,omitempty"`
	Duplicates         int `json:"duplicates" bson:"dp,omitempty"`
	Escalated          int `json:"escalated" bson:"es,omitempty"`
	ResolvedOfReported int `json:"resolvedOfReported" bson:"rr,omitempty"`
	Accepted           int `json:"accepted" bson:"ac,omitempty"`
	DueToClose         int `json:"dueToClose" bson:"dc,omitempty"`
	Closed             int `json:"closed" bson:"cl,omitempty"`
	ClosedOnTime       int `json:"closedOnTime" bson:"ct,omitempty"`
	Reopened           int `json:"reopened" bson:"ro,omitempty"`
	// SecondsToClose sums working seconds from acceptance to close: whole numbers, so
	// counters that add and take away items stay exact.
	SecondsToClose     int64 `json:"secondsToClose" bson:"sc,omitempty"`
	Rated              int   `json:"rated" bson:"ra,omitempty"`
	Satisfied          int   `json:"satisfied" bson:"sa,omitempty"`
	BasicallySatisfied int   `json:"basicallySatisfied" bson:"bs,omitempty"`
	Unsatisfied        int   `json:"unsatisfied" bson:"us,omitempty"`
	OpenOverdue        int   `json:"openOverdue" bson:"oo,omitempty"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts, sign int) {
	c.Reported += sign * o.Reported
	c.Refused += sign * o.Refused
	c.Duplicates += sign * o.Duplicates
	c.Escalated += sign * o.Escalated
	c.ResolvedOfReported += sign * o.ResolvedOfReported
	c.Accepted += sign * o.Accepted
	c.DueToClose += sign * o.DueToClose
	c.Closed += sign * o.Closed
	c.ClosedOnTime += sign * o.ClosedOnTime
	c.Reopened += sign * o.Reopened
	c.SecondsToClose += int64(sign) * o.SecondsToClose
	c.Rated += sign * o.Rated
	c.Satisfied += sign * o.Satisfied
	c.BasicallySatisfied += sign * o.BasicallySatisfied
	c.Unsatisfied += sign * o.Unsatisfied
	c.OpenOverdue += sign * o.OpenOverdue
}

// Part is what an item adds to the counters of one day ("" for the gauge).
type Part struct {
	Day    string // YYYY-MM-DD, Asia/Shanghai
	Counts Counts
}

// Day is the calendar day of t in Asia/Shanghai.
func Day(t time.Time) string { return t.In(workday.Location()).Format("2006-01-02") }

// Contribution is what an item (measured) adds to its unit's counters, by day.
func Contribution(it Item) []Part {
	var parts []Part
	rep := Counts{Reported: 1}
	switch it.Status {
	case incident.Refused:
		rep.Refused = 1
	case incident.Duplicate:
		rep.Duplicates = 1
	case incident.Closed:
		rep.ResolvedOfReported = 1
	}
	if it.Escalated {
		rep.Escalated = 1
	}
	parts = append(parts, Part{Day: Day(it.ReportedAt), Counts: rep})
	if it.AcceptedAt != nil {
		acc := Counts{Accepted: 1}
		if it.Status != incident.Refused && it.Status != incident.Duplicate {
			acc.DueToClose = 1
		}
		if it.Status == incident.Closed && it.ClosedAt != nil {
			acc.Closed = 1
			if it.DueAt == nil || !it.ClosedAt.After(*it.DueAt) {
				acc.ClosedOnTime = 1
			}
			acc.SecondsToClose = it.WorkSeconds
			if it.Reopened {
				acc.Reopened = 1
			}
		}
		parts = append(parts, Part{Day: Day(*it.AcceptedAt), Counts: acc})
	}
	if it.RatedAt != nil && it.Rating != "" {
		r := Counts{Rated: 1}
		switch it.Rating {
		case "satisfied":
			r.Satisfied = 1
		case "basically_satisfied":
			r.BasicallySatisfied = 1
		case "unsatisfied":
			r.Unsatisfied = 1
		}
		parts = append(parts, Part{Day: Day(*it.RatedAt), Counts: r})
	}
	if it.OpenOverdue() {
		parts = append(parts, Part{Counts: Counts{OpenOverdue: 1}})
	}
	return parts
}

// OpenOverdue reports whether the item is on the list of open overdue items.
func (it Item) OpenOverdue() bool { return it.Overdue && !it.Status.Final() }

// Figures are the rates of DESIGN §3 with the counts they come from; a rate whose
// denominator is zero is nil (no figure, rather than 0 % or 100 %).
type Figures struct {
	Counts
	ClosureRate            *float64 `json:"closureRate"`            // closed ÷ due to close
	OnTimeRate             *float64 `json:"onTimeRate"`             // closed on or before due ÷ due to close
	SatisfactionRate       *float64 `json:"satisfactionRate"`       // (satisfied + basically) ÷ rated
	EscalationRate         *float64 `json:"escalationRate"`         // escalated ÷ reported
	RefusalRate            *float64 `json:"refusalRate"`            // refused ÷ reported
	ReopenRate             *float64 `json:"reopenRate"`             // reopened ÷ closed (重办率)
	MeanHoursToClose       *float64 `json:"meanHoursToClose"`       // working hours, acceptance to close
	ResolvedOfReportedRate *float64 `json:"resolvedOfReportedRate"` // the plain "469 of 476"
}

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	r := a / b
	return &r
}

// Rates computes the figures from counts.
func Rates(c Counts) Figures {
	return Figures{
		Counts:                 c,
		ClosureRate:            ratio(float64(c.Closed), float64(c.DueToClose)),
		OnTimeRate:             ratio(float64(c.ClosedOnTime), float64(c.DueToClose)),
		SatisfactionRate:       ratio(float64(c.Satisfied+c.BasicallySatisfied), float64(c.Rated)),
		EscalationRate:         ratio(float64(c.Escalated), float64(c.Reported)),
		RefusalRate:            ratio(float64(c.Refused), float64(c.Reported)),
		ReopenRate:             ratio(float64(c.Reopened), float64(c.Closed)),
		MeanHoursToClose:       ratio(float64(c.SecondsToClose)/3600, float64(c.Closed)),
		ResolvedOfReportedRate: ratio(float64(c.ResolvedOfReported), float64(c.Reported)),
	}
}

// Sum adds the contributions of items that fall in [from, to] (days, inclusive), and
// the gauge.
func Sum(items []Item, cal *workday.Calendar, from, to string) Counts {
	var c Counts
	for _, it := range items {
		it.Measure(cal)
		for _, p := range Contribution(it) {
			if p.Day == "" || (p.Day >= from && p.Day <= to) {
				c.Add(p.Counts, 1)
			}
		}
	}
	return c
}
