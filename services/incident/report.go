package incident

import (
	"bytes"
	"context"
	"encoding/csv"
	"strconv"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// RefusalReport is the monthly 否定报备 report for the discipline officer: every
// refusal filed in a month in a unit's subtree, by refusing unit. The report of a
// month is due by the 10th of the next; from the 1st it is complete.
type RefusalReport struct {
	Month       string        `json:"month"` // YYYY-MM, Asia/Shanghai
	Unit        string        `json:"unit"`
	GeneratedAt time.Time     `json:"generatedAt"`
	DueBy       string        `json:"dueBy"`    // YYYY-MM-10 of the next month
	Complete    bool          `json:"complete"` // the month is over
	Total       int           `json:"total"`
	Late        int           `json:"late"` // filed later than 1 working day after receipt
	ByUnit      []RefusalUnit `json:"byUnit"`
}

// RefusalUnit is one refusing unit's part of the report.
type RefusalUnit struct {
	Unit  string        `json:"unit"`
	Count int           `json:"count"`
	Late  int           `json:"late"`
	Items []RefusalItem `json:"items"`
}

// RefusalItem is one refusal.
type RefusalItem struct {
	IncidentID      string    `json:"incidentId"`
	Category        string    `json:"category"`
	Reason          string    `json:"reason"`
	By              string    `json:"by"`
	ReceivedAt      time.Time `json:"receivedAt"`
	RefusedAt       time.Time `json:"refusedAt"`
	Late            bool      `json:"late"`
	RequesterNotice string    `json:"requesterNotice,omitempty"`
}

// RefusalReport builds the report of month (YYYY-MM; empty: the previous month) for
// unit (empty: the caller's home unit). For the discipline officer, leaders,
// supervisors and admins of the unit or above.
func (s *Service) RefusalReport(ctx context.Context, a org.Actor, month, unit string, now time.Time) (*RefusalReport, error) {
	if !a.System && !a.Has(org.RoleDiscipline, org.RoleLeader, org.RoleSupervisor, org.RoleAdmin) {
		return nil, fault.New(fault.Forbidden, "forbidden", "the refusal report is for the discipline officer, leaders and supervisors")
	}
	loc := workday.Location()
	if unit == "" {
		unit = a.UnitID
	}
	if !org.ValidCode(unit) {
		return nil, fault.New(fault.Invalid, "invalid_request", "unit: a unit code")
	}
	if !a.Sees(unit) {
		return nil, fault.New(fault.Forbidden, "out_of_scope", "the unit is outside the caller's area")
	}
	var start time.Time
	if month == "" {
		y, m, _ := now.In(loc).Date()
		start = time.Date(y, m-1, 1, 0, 0, 0, 0, loc)
	} else {
		t, err := time.ParseInLocation("2006-01", month, loc)
		if err != nil || t.Year() < 2000 || t.Year() > 2100 {
			return nil, fault.New(fault.Invalid, "invalid_request", "month: YYYY-MM")
		}
		start = t
	}
	end := start.AddDate(0, 1, 0)
	filter := bson.D{
		{Key: "status", Value: string(Refused)},
		{Key: "refusal.at", Value: bson.D{{Key: "$gte", Value: start.UTC()}, {Key: "$lt", Value: end.UTC()}}},
		// Unit codes are digits only: the prefix needs no escaping.
		{Key: "refusal.unit", Value: bson.D{{Key: "$regex", Value: "^" + unit}}},
	}
	docs, err := s.store.find(ctx, filter, options.Find().SetSort(bson.D{{Key: "refusal.at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	r := &RefusalReport{Month: start.Format("2006-01"), Unit: unit, GeneratedAt: now.UTC(),
		DueBy: end.Format("2006-01") + "-10", Complete: !now.Before(end), ByUnit: []RefusalUnit{}}
	at := map[string]int{}
	for _, d := range docs {
		rf := d.Refusal
		if rf == nil {
			continue
		}
		i, ok := at[rf.Unit]
		if !ok {
			i = len(r.ByUnit)
			at[rf.Unit] = i
			r.ByUnit = append(r.ByUnit, RefusalUnit{Unit: rf.Unit, Items: []RefusalItem{}})
		}
		u := &r.ByUnit[i]
		u.Items = append(u.Items, RefusalItem{IncidentID: d.ID, Category: d.Category, Reason: rf.Reason, By: rf.By,
			ReceivedAt: rf.ReceivedAt.UTC(), RefusedAt: rf.At.UTC(), Late: rf.Late, RequesterNotice: rf.RequesterNotice})
		u.Count++
		r.Total++
		if rf.Late {
			u.Late++
			r.Late++
		}
	}
	return r, nil
}

// CSV writes the report as one row per refusal, times in Asia/Shanghai.
func (r *RefusalReport) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"month", "unit", "incident", "category", "reason", "refused_by", "received_at", "refused_at", "late", "requester_notice"})
	loc := workday.Location()
	for _, u := range r.ByUnit {
		for _, it := range u.Items {
			_ = w.Write([]string{r.Month, u.Unit, it.IncidentID, it.Category, it.Reason, it.By,
				it.ReceivedAt.In(loc).Format("2006-01-02 15:04"), it.RefusedAt.In(loc).Format("2006-01-02 15:04"),
				strconv.FormatBool(it.Late), it.RequesterNotice})
		}
	}
	w.Flush()
	return b.Bytes()
}
