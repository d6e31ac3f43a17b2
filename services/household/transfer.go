package household

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Import and export of the ledgers. An import is a list of households (gridctl reads
// the CSV, one row per resident, and sends them in batches); each is checked first —
// all of a file before anything is stored, unless the caller skips the bad ones — then
// stored through the write path (household.import: idempotent, so an import run
// twice stores nothing twice).

// ImportRow is a household to import, with the CSV lines it came from.
type ImportRow struct {
	Household Household `json:"household"`
	Lines     []int     `json:"lines"`
}

// RowError is what is wrong with one household of an import.
type RowError struct {
	Lines   []int  `json:"lines"`
	ID      string `json:"householdId"`
	Problem string `json:"problem"`
}

// ImportResult says what an import did.
type ImportResult struct {
	Checked  int        `json:"checked"`
	Imported int        `json:"imported"` // stored now (0 for a dry run)
	Existing int        `json:"existing"` // stored before: left as they are
	Errors   []RowError `json:"errors"`
}

// checkImport validates a household to import as applyImport will.
func (s *Service) checkImport(ctx context.Context, h *Household, grids map[string]bool) error {
	if err := validGrid(h.ID, h.GridID); err != nil {
		return fmt.Errorf("householdId or gridId invalid")
	}
	if !grids[h.GridID] {
		return fmt.Errorf("gridId %s: no such grid", h.GridID)
	}
	if strings.TrimSpace(h.Address) == "" && strings.TrimSpace(h.Building) == "" {
		return fmt.Errorf("an address or a building is required")
	}
	for field, v := range map[string]string{"building": h.Building, "unit": h.Unit, "room": h.Room} {
		if utf8.RuneCountInString(v) > 50 {
			return fmt.Errorf("%s: at most 50 characters", field)
		}
	}
	if utf8.RuneCountInString(h.Address) > 200 {
		return fmt.Errorf("address: at most 200 characters")
	}
	for _, t := range h.Tags {
		if !slices.Contains(Tags, t) {
			return fmt.Errorf("unknown tag %q", t)
		}
	}
	if len(h.Members) > 50 {
		return fmt.Errorf("at most 50 residents")
	}
	ids := map[string]bool{}
	for i := range h.Members {
		m := &h.Members[i]
		if n := utf8.RuneCountInString(strings.TrimSpace(m.Name)); n == 0 || n > 50 {
			return fmt.Errorf("resident %d: a name of 1 to 50 characters", i+1)
		}
		for _, t := range m.Tags {
			if !slices.Contains(Tags, t) {
				return fmt.Errorf("resident %s: unknown tag %q", m.Name, t)
			}
		}
		if err := checkPersonal(m); err != nil {
			return fmt.Errorf("resident %s: %v", m.Name, err)
		}
		if masked(m.IDCard) || masked(m.Phone) {
			return fmt.Errorf("resident %s: a masked number cannot be imported", m.Name)
		}
		if m.ResidentID != "" {
			if ids[m.ResidentID] {
				return fmt.Errorf("resident id %s twice", m.ResidentID)
			}
			ids[m.ResidentID] = true
		}
	}
	return nil
}

// Import checks rows and, unless dryRun, stores the good ones — or, when skipBad is
// false, stores nothing if any row is bad. Admins only.
func (s *Service) Import(ctx context.Context, a org.Actor, rows []ImportRow, dryRun, skipBad bool) (*ImportResult, error) {
	if !a.Has(org.RoleAdmin) {
		return nil, fault.New(fault.Forbidden, "forbidden", "imports are made by admins")
	}
	if len(rows) == 0 || len(rows) > 2000 {
		return nil, fault.New(fault.Invalid, "invalid_request", "1 to 2000 households per request")
	}
	grids, err := s.grids(ctx, a)
	if err != nil {
		return nil, err
	}
	r := &ImportResult{Checked: len(rows), Errors: []RowError{}}
	seen := map[string]bool{}
	var good []*Household
	for i := range rows {
		h := &rows[i].Household
		err := s.checkImport(ctx, h, grids)
		if err == nil && seen[h.ID] {
			err = fmt.Errorf("household %s twice in the file", h.ID)
		}
		seen[h.ID] = true
		if err != nil {
			r.Errors = append(r.Errors, RowError{Lines: rows[i].Lines, ID: h.ID, Problem: err.Error()})
			continue
		}
		good = append(good, h)
	}
	if dryRun || (len(r.Errors) > 0 && !skipBad) {
		return r, nil
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	reqs := make([]command.Request, len(good))
	for i, h := range good {
		if h.CreatedAt.IsZero() {
			h.CreatedAt = now
		}
		h.UpdatedAt = now
		if h.Members == nil {
			h.Members = []Member{}
		}
		// A fresh command id: a household already stored is left as it is, and told as such.
		reqs[i] = command.Request{Name: CmdImport, Key: org.PartitionKey(h.GridID), Actor: org.SystemActor("import:" + a.UserID), Args: h}
	}
	outs, err := s.Bus.DoAll(ctx, reqs, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	for i, o := range outs {
		if o.Status == command.Applied {
			// An import stores the household, or leaves the one already stored.
			if len(o.Changes) > 0 {
				r.Imported++
			} else {
				r.Existing++
			}
			continue
		}
		msg := "not stored"
		if o.Error != nil {
			msg = o.Error.Message
		}
		r.Errors = append(r.Errors, RowError{ID: good[i].ID, Problem: msg})
	}
	return r, nil
}

// grids lists the grids of the caller's subtree.
func (s *Service) grids(ctx context.Context, a org.Actor) (map[string]bool, error) {
	cur, err := s.DB.Collection("units").Find(ctx, bson.D{{Key: "level", Value: int(org.Grid)}}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fault.Wrap(err, "read units")
	}
	var us []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &us); err != nil {
		return nil, fault.Wrap(err, "read units")
	}
	out := map[string]bool{}
	for _, u := range us {
		if a.Sees(u.ID) {
			out[u.ID] = true
		}
	}
	return out, nil
}

// ExportHouseholds writes the households of unit's subtree as CSV, one row per
// resident (a household without residents is one row), personal numbers masked.
func (s *Service) ExportHouseholds(ctx context.Context, a org.Actor, unit string) ([]byte, error) {
	if err := s.exportable(a, &unit); err != nil {
		return nil, err
	}
	var hs []Household
	if err := s.findIn(ctx, Coll, unit, &hs); err != nil {
		return nil, err
	}
	slices.SortFunc(hs, func(x, y Household) int { return strings.Compare(x.GridID+x.ID, y.GridID+y.ID) })
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(CSVHeader)
	for i := range hs {
		h := hs[i].Wire()
		rows := h.Members
		if len(rows) == 0 {
			rows = []Member{{}}
		}
		for _, m := range rows {
			_ = w.Write([]string{h.ID, h.GridID, h.Building, h.Unit, h.Room, h.Address, strings.Join(h.Tags, "|"),
				m.ResidentID, m.Name, m.Relation, m.Gender, m.BirthDate, m.IDCard, m.Phone, strconv.FormatBool(m.Floating), strings.Join(m.Tags, "|")})
		}
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// CSVHeader is the household CSV's header, for import and export alike.
var CSVHeader = []string{"householdId", "gridId", "building", "unit", "room", "address", "householdTags",
	"residentId", "name", "relation", "gender", "birthDate", "idCard", "phone", "floating", "residentTags"}

// ExportVisits writes the visits in unit's subtree between from and to as CSV.
func (s *Service) ExportVisits(ctx context.Context, a org.Actor, unit string, from, to time.Time) ([]byte, error) {
	if err := s.exportable(a, &unit); err != nil {
		return nil, err
	}
	var vs []Visit
	if err := s.findIn(ctx, VisitColl, unit, &vs); err != nil {
		return nil, err
	}
	slices.SortFunc(vs, func(x, y Visit) int { return x.VisitedAt.Compare(y.VisitedAt) })
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"visitId", "householdId", "gridId", "by", "visitedAt", "kind", "note", "residents", "photos"})
	for _, v := range vs {
		if v.VisitedAt.Before(from) || !v.VisitedAt.Before(to) {
			continue
		}
		_ = w.Write([]string{v.ID, v.HouseholdID, v.GridID, v.By, v.VisitedAt.UTC().Format(time.RFC3339), v.Kind, v.Note,
			strconv.Itoa(len(v.ResidentIDs)), strconv.Itoa(len(v.Photos))})
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

func (s *Service) exportable(a org.Actor, unit *string) error {
	if !a.Has(org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader, org.RoleAdmin) && !a.IsGridWorker() {
		return fault.New(fault.Forbidden, "forbidden", "this role does not export the ledgers")
	}
	u, err := a.Area(*unit)
	*unit = u
	return err
}

func (s *Service) findIn(ctx context.Context, coll, unit string, out any) error {
	// Unit codes are digits only: the prefix needs no escaping.
	cur, err := s.DB.Collection(coll).Find(ctx, bson.D{{Key: "gridId", Value: bson.D{{Key: "$regex", Value: org.SubtreeRegex(unit)}}}})
	if err != nil {
		return fault.Wrap(err, "read "+coll)
	}
	if err := cur.All(ctx, out); err != nil {
		return fault.Wrap(err, "read "+coll)
	}
	return nil
}
