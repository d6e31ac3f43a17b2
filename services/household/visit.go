package household

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/attachment"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Visits 走访: grid workers visit households on a plan per tag (schemas/visits.json:
// weekly for the elderly living alone, monthly for the disabled, …). A visit is logged
// on the phone, offline if need be (visit.log); it updates the household's last visit,
// from which the next due visit follows. Every working morning the due visits that
// were missed are announced per grid (visit.overdue) for the notifier.

// VisitColl holds the visits; CmdVisit logs one.
const (
	VisitColl = "visits"
	CmdVisit  = "visit.log"
)

// Plans maps a tag to the most days between two visits.
type Plans map[string]int

// ParsePlans reads schemas/visits.json.
func ParsePlans(data []byte) (Plans, error) {
	var f struct {
		Version int    `json:"version"`
		Note    string `json:"note"`
		Plans   Plans  `json:"plans"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt member must not replace the plans with none
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("visit plans: %w", err)
	}
	if f.Plans == nil {
		return nil, fmt.Errorf("visit plans: a \"plans\" object of tag → days is required")
	}
	for tag, days := range f.Plans {
		if !slices.Contains(Tags, tag) || days < 1 || days > 366 {
			return nil, fmt.Errorf("visit plans: %s every %d days: a known tag, 1 to 366 days", tag, days)
		}
	}
	return f.Plans, nil
}

// Interval is the household's plan: the fewest days among its and its residents'
// tags (0: not visited on a plan).
func (p Plans) Interval(h *Household) int {
	best := 0
	consider := func(tags []string) {
		for _, t := range tags {
			if d := p[t]; d > 0 && (best == 0 || d < best) {
				best = d
			}
		}
	}
	consider(h.Tags)
	for _, m := range h.Members {
		consider(m.Tags)
	}
	return best
}

// VisitDue is when a visit is due after one on last, every days: the end of the day
// days later — or of the next working day, when that day is not one. A year missing
// from the calendar counts every day as a working day.
func VisitDue(cal *workday.Calendar, last time.Time, days int) time.Time {
	loc := workday.Location()
	y, m, d := last.In(loc).Date()
	day := time.Date(y, m, d+days, 0, 0, 0, 0, loc)
	for i := 0; i < 60; i++ {
		ok, err := cal.IsWorkday(day)
		if err != nil || ok {
			break
		}
		day = day.AddDate(0, 0, 1)
	}
	return day.AddDate(0, 0, 1)
}

// Visit is one logged visit.
type Visit struct {
	ID          string    `json:"id" bson:"_id"`
	HouseholdID string    `json:"householdId" bson:"householdId"`
	GridID      string    `json:"gridId" bson:"gridId"`
	By          string    `json:"by" bson:"by"`
	VisitedAt   time.Time `json:"visitedAt" bson:"visitedAt"`
	ResidentIDs []string  `json:"residentIds,omitempty" bson:"residentIds,omitempty"`
	Kind        string    `json:"kind" bson:"kind"`
	Note        string    `json:"note,omitempty" bson:"note,omitempty"`
	Location    *Point    `json:"location,omitempty" bson:"location,omitempty"`
	Photos      []string  `json:"photos,omitempty" bson:"photos,omitempty"`
	LoggedAt    time.Time `json:"loggedAt" bson:"loggedAt"`
	Version     int64     `json:"version" bson:"version"`
}

// Point is a GPS position (WGS-84).
type Point struct {
	Lat float64 `json:"lat" bson:"lat"`
	Lng float64 `json:"lng" bson:"lng"`
}

// VisitArgs are the arguments of visit.log.
type VisitArgs struct {
	VisitID     string    `json:"visitId"`
	HouseholdID string    `json:"householdId"`
	VisitedAt   time.Time `json:"visitedAt"`
	ResidentIDs []string  `json:"residentIds"`
	Kind        string    `json:"kind"`
	Note        string    `json:"note"`
	Location    *Point    `json:"location"`
	Photos      []string  `json:"photos"`
}

var visitKinds = []string{"routine", "follow_up", "emergency"}

// applyVisit logs a visit made in the field and moves the household's last visit.
func applyVisit(tx *command.Tx, c *command.Command) error {
	var a VisitArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match visit.log")
	}
	now := tx.Now()
	f := fault.Fields{}
	if !command.ValidToken(a.VisitID) {
		f.Add("visitId", "a UUID made on the handset")
	}
	if !command.ValidToken(a.HouseholdID) {
		f.Add("householdId", "a household id")
	}
	switch {
	case a.VisitedAt.IsZero():
		f.Add("visitedAt", "when the visit was made (RFC 3339)")
	case a.VisitedAt.After(now.Add(10 * time.Minute)):
		f.Add("visitedAt", "in the future")
	case a.VisitedAt.Before(now.AddDate(-1, 0, 0)):
		f.Add("visitedAt", "more than a year ago")
	}
	if a.Kind == "" {
		a.Kind = "routine"
	}
	if !slices.Contains(visitKinds, a.Kind) {
		f.Add("kind", strings.Join(visitKinds, ", "))
	}
	if utf8.RuneCountInString(a.Note) > 2000 || !utf8.ValidString(a.Note) {
		f.Add("note", "at most 2000 characters")
	}
	if p := a.Location; p != nil && (math.IsNaN(p.Lat) || math.IsNaN(p.Lng) || p.Lat < -90 || p.Lat > 90 || p.Lng < -180 || p.Lng > 180) {
		f.Add("location", "lat -90..90, lng -180..180")
	}
	if len(a.ResidentIDs) > 50 {
		f.Add("residentIds", "at most 50")
	}
	attachment.CheckPhotos(f, "photos", a.Photos)
	if err := f.Err("invalid_args", "invalid visit"); err != nil {
		return err
	}
	st, err := loadEditable(tx, c, a.HouseholdID)
	if err != nil {
		return err
	}
	for _, r := range a.ResidentIDs {
		if !slices.ContainsFunc(st.Members, func(m Member) bool { return m.ResidentID == r }) {
			return fault.New(fault.Invalid, "invalid_args", "residentIds: "+r+" does not live in this household")
		}
	}
	var old Visit
	if found, err := tx.Get(VisitColl, a.VisitID, &old); err != nil {
		return err
	} else if found {
		return fault.New(fault.Conflict, "already_exists", "a visit with this id exists")
	}
	v := Visit{ID: a.VisitID, HouseholdID: st.ID, GridID: st.GridID, By: c.Actor.UserID, VisitedAt: a.VisitedAt.UTC().Truncate(time.Millisecond),
		ResidentIDs: a.ResidentIDs, Kind: a.Kind, Note: strings.TrimSpace(a.Note), Location: a.Location, Photos: a.Photos,
		LoggedAt: now, Version: 1}
	for _, p := range a.Photos {
		tx.Reference(p, v.ID, st.GridID)
	}
	path := org.PathSubject(st.GridID)
	if err := tx.Put(command.Record{Coll: VisitColl, ID: v.ID, Version: 1, Path: path, Doc: v, Wire: v}); err != nil {
		return err
	}
	// A visit logged late (offline for days) that is older than the last one leaves
	// the household as it is.
	if st.LastVisitAt != nil && !v.VisitedAt.After(*st.LastVisitAt) {
		return nil
	}
	at := v.VisitedAt
	st.LastVisitAt = &at
	st.Version++
	st.UpdatedAt = now
	return tx.Put(command.Record{Coll: Coll, ID: st.ID, Version: st.Version, Path: path, Doc: *st, Wire: st.Household.Wire()})
}

// DueVisit is a household's next visit.
type DueVisit struct {
	HouseholdID string     `json:"householdId"`
	GridID      string     `json:"gridId"`
	Building    string     `json:"building,omitempty"`
	Unit        string     `json:"unit,omitempty"`
	Room        string     `json:"room,omitempty"`
	Address     string     `json:"address,omitempty"`
	Tags        []string   `json:"tags"` // the household's and its residents'
	EveryDays   int        `json:"everyDays"`
	LastVisitAt *time.Time `json:"lastVisitAt,omitempty"`
	DueAt       time.Time  `json:"dueAt"`
	Overdue     bool       `json:"overdue"`
}

// DueVisits lists the households of unit's subtree that have a visit plan, soonest
// due first (only the overdue ones if overdue).
func (s *Service) DueVisits(ctx context.Context, a org.Actor, unit string, now time.Time, overdue bool) ([]DueVisit, error) {
	unit, err := a.Area(unit)
	if err != nil {
		return nil, err
	}
	return s.dueVisits(ctx, unit, now, overdue)
}

func (s *Service) dueVisits(ctx context.Context, unit string, now time.Time, overdue bool) ([]DueVisit, error) {
	// Unit codes are digits only: the prefix needs no escaping.
	cur, err := s.DB.Collection(Coll).Find(ctx, bson.D{{Key: "gridId", Value: bson.D{{Key: "$regex", Value: org.SubtreeRegex(unit)}}}},
		options.Find().SetProjection(bson.D{{Key: "fieldVersions", Value: 0}}))
	if err != nil {
		return nil, fault.Wrap(err, "read households")
	}
	var hs []Household
	if err := cur.All(ctx, &hs); err != nil {
		return nil, fault.Wrap(err, "read households")
	}
	cal := s.Calendar()
	plans := s.Plans()
	out := []DueVisit{}
	for i := range hs {
		h := &hs[i]
		days := plans.Interval(h)
		if days == 0 {
			continue
		}
		from := h.CreatedAt
		if h.LastVisitAt != nil {
			from = *h.LastVisitAt
		}
		due := VisitDue(cal, from, days)
		dv := DueVisit{HouseholdID: h.ID, GridID: h.GridID, Building: h.Building, Unit: h.Unit, Room: h.Room, Address: h.Address,
			Tags: tagsOf(h), EveryDays: days, DueAt: due.UTC(), Overdue: !now.Before(due)}
		if h.LastVisitAt != nil {
			t := h.LastVisitAt.UTC()
			dv.LastVisitAt = &t
		}
		if overdue && !dv.Overdue {
			continue
		}
		out = append(out, dv)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].DueAt.Equal(out[j].DueAt) {
			return out[i].DueAt.Before(out[j].DueAt)
		}
		return out[i].HouseholdID < out[j].HouseholdID
	})
	return out, nil
}

func tagsOf(h *Household) []string {
	tags := append([]string{}, h.Tags...)
	for _, m := range h.Members {
		for _, t := range m.Tags {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	sort.Strings(tags)
	return tags
}
