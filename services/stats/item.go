package stats

import (
	"strings"

	"github.com/gridkeeper/gridkeeper/services/incident"
)

// FromIncident is what the figures need of an incident: its first acceptance (an
// accept, or a level above taking it or handing it down), whether a person or a
// missed urgent deadline escalated it, whether it was reopened, its rating, and
// whether it is overdue.
func FromIncident(inc *incident.Incident) Item {
	it := Item{ID: inc.ID, Place: inc.ScopeUnit(), Category: inc.Category, Status: inc.Status,
		ReportedAt: inc.CreatedAt, ClosedAt: inc.ClosedAt, DueAt: inc.DueAt, Reopened: inc.Reopens > 0,
		Overdue: inc.Overdue, Version: inc.Version, Owner: inc.UnitID, Level: inc.Level, Urgent: inc.Urgent,
		Summary: summary(inc.Description)}
	for _, h := range inc.History {
		switch h.Action {
		case string(incident.ActAccept), string(incident.ActHandDown), string(incident.ActTakeOver):
			if it.AcceptedAt == nil {
				at := h.At
				it.AcceptedAt = &at
			}
		case string(incident.ActEscalate):
			it.Escalated = true
		}
	}
	if inc.Status != incident.Closed {
		it.ClosedAt = nil
	}
	if r := inc.Rating; r != nil {
		at := r.At
		it.RatedAt, it.Rating = &at, r.Value
	}
	return it
}

// summary is the first 40 characters of a description.
func summary(s string) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return string(r)
}
