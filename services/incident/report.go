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
	Month       string    `json:"month"` // YYYY-MM, Asia/Shanghai
	Unit        string    `json:"unit"`
	GeneratedAt time.Time `json:"generatedAt"`
	DueBy       string    `json:"dueBy"`    // YYYY-MM-10 of the next month
	Complete    bool      `json:"complete"` // the month is over
	// Filed is set once the report was filed on the 1st; it is then read from that
	// record, and GeneratedAt is the filing time.
	Filed  bool          `json:"filed"`
	Total  int           `json:"total"`
	Late   int           `json:"late"` // filed later than 1 working day after receipt
	ByUnit []RefusalUnit `json:"byUnit"`

	at map[string]int // ByUnit index per unit, while building
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
	IncidentID      string    `json:"incidentId" bson:"incidentId"`
	Category        string    `json:"category" bson:"category"`
	Reason          string    `json:"reason" bson:"reason"`
	By              string    `json:"by" bson:"by"`
	ReceivedAt      time.Time `json:"receivedAt" bson:"receivedAt"`
	RefusedAt       time.Time `json:"refusedAt" bson:"refusedAt"`
	Late            bool      `json:"late" bson:"late"`
	RequesterNotice string    `json:"requesterNotice,omitempty" bson:"requesterNotice,omitempty"`
}

// RefusalReport builds the report of month (YYYY-MM; empty: the previous month) for
// unit (empty: the caller's home unit). For the discipline officer, leaders,
// supervisors and admins of the unit or above.
func (s *Service) RefusalReport(ctx context.Context, a org.Actor, month, unit string, now time.Time) (*RefusalReport, error) {
	if !a.System && !a.Has(org.RoleDiscipline, org.RoleLeader, org.RoleSupervisor, org.RoleAdmin) {
		return nil, fault.New(fault.Forbidden, "forbidden", "the refusal report is for the discipline officer, leaders and supervisors")
	}
	loc := workday.Location()
	unit, err := a.Area(unit)
	if err != nil {
		return nil, err
	}
	if month == "" {
		y, m, _ := now.In(loc).Date()
		month = time.Date(y, m-1, 1, 0, 0, 0, 0, loc).Format("2006-01")
	} else if t, err := time.ParseInLocation("2006-01", month, loc); err != nil || t.Year() < 2000 || t.Year() > 2100 {
		return nil, fault.New(fault.Invalid, "invalid_request", "month: YYYY-MM")
	}
	f, err := s.filed(ctx, month)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return s.refusals(ctx, month, unit, now)
	}
	// Filed on the 1st: the report is the frozen record, cut to the unit.
	r := newRefusalReport(month, unit, f.FiledAt.UTC(), now)
	r.Filed = true
	for _, x := range f.Refusals {
		if org.Contains(unit, x.Unit) {
			r.add(x.Unit, x.Item)
		}
	}
	return r, nil
}

func newRefusalReport(month, unit string, generated, now time.Time) *RefusalReport {
	start, _ := time.ParseInLocation("2006-01", month, workday.Location())
	end := start.AddDate(0, 1, 0)
	return &RefusalReport{Month: month, Unit: unit, GeneratedAt: generated, DueBy: dueBy(month),
		Complete: !now.Before(end), ByUnit: []RefusalUnit{}, at: map[string]int{}}
}

func (r *RefusalReport) add(unit string, it RefusalItem) {
	i, ok := r.at[unit]
	if !ok {
		i = len(r.ByUnit)
		r.at[unit] = i
		r.ByUnit = append(r.ByUnit, RefusalUnit{Unit: unit, Items: []RefusalItem{}})
	}
	u := &r.ByUnit[i]
	u.Items = append(u.Items, it)
	u.Count++
	r.Total++
	if it.Late {
		u.Late++
		r.Late++
	}
}

// refusals builds month's report from the incidents as they are, for unit's subtree
// ("" for every unit).
func (s *Service) refusals(ctx context.Context, month, unit string, now time.Time) (*RefusalReport, error) {
	start, err := time.ParseInLocation("2006-01", month, workday.Location())
	if err != nil {
		return nil, fault.New(fault.Invalid, "invalid_request", "month: YYYY-MM")
	}
	end := start.AddDate(0, 1, 0)
	filter := bson.D{
		{Key: "status", Value: string(Refused)},
		{Key: "refusal.at", Value: bson.D{{Key: "$gte", Value: start.UTC()}, {Key: "$lt", Value: end.UTC()}}},
	}
	if unit != "" {
		// Unit codes are digits only: the prefix needs no escaping.
		filter = append(filter, bson.E{Key: "refusal.unit", Value: bson.D{{Key: "$regex", Value: org.SubtreeRegex(unit)}}})
	}
	docs, err := s.store.find(ctx, filter, options.Find().SetSort(bson.D{{Key: "refusal.at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	r := newRefusalReport(month, unit, now.UTC(), now)
	for _, d := range docs {
		if rf := d.Refusal; rf != nil {
			r.add(rf.Unit, RefusalItem{IncidentID: d.ID, Category: d.Category, Reason: rf.Reason, By: rf.By,
				ReceivedAt: rf.ReceivedAt.UTC(), RefusedAt: rf.At.UTC(), Late: rf.Late, RequesterNotice: rf.RequesterNotice})
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
