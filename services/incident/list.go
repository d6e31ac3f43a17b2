package incident

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ListQuery selects incidents for the dispatcher's list. Every field is optional.
type ListQuery struct {
	Unit     string   // a unit of the caller's subtree (default: the caller's home unit)
	Statuses []Status // any of
	Category string   // a category code; a top-level code takes its sub-categories too
	Level    int      // 1..5
	Overdue  *bool
	Sort     string // createdAt, dueAt or updatedAt, "-" first for newest first (default -createdAt)
	Limit    int    // 1..200 (default 50)
	Cursor   string // from the previous page
}

// ListPage is one page of the list.
type ListPage struct {
	Items      []Incident `json:"items"`
	NextCursor string     `json:"nextCursor,omitempty"`
}

var sortFields = []string{"createdAt", "dueAt", "updatedAt"}

// List returns a page of the incidents in the caller's subtree (owned there, or
// happening in one of its grids), filtered and sorted; personal data masked. It reads
// the database: on MongoDB give incidents indexes on unitId, gridId, status and the
// sort fields.
func (s *Service) List(ctx context.Context, a org.Actor, q ListQuery) (*ListPage, error) {
	f := fault.Fields{}
	unit := q.Unit
	if unit == "" {
		unit = a.UnitID
	}
	if !org.ValidCode(unit) {
		f.Add("unit", "a unit code")
	} else if !a.Sees(unit) {
		return nil, fault.New(fault.Forbidden, "out_of_scope", "the unit is outside the caller's area")
	}
	valid := []Status{Reported, Accepted, Assigned, InProgress, Delayed, Resolved, Closed, Refused, Duplicate}
	for _, st := range q.Statuses {
		if !slices.Contains(valid, st) {
			f.Add("status", "one or more of reported, accepted, assigned, in_progress, delayed, resolved, closed, refused, duplicate")
			break
		}
	}
	if q.Category != "" {
		if _, ok := s.Catalog().Find(q.Category); !ok {
			f.Add("category", "unknown category")
		}
	}
	if q.Level != 0 && (q.Level < 1 || q.Level > 5) {
		f.Add("level", "1 (grid) to 5 (city)")
	}
	sortField, desc := strings.CutPrefix(q.Sort, "-")
	if q.Sort == "" {
		sortField, desc = "createdAt", true
	}
	if !slices.Contains(sortFields, sortField) {
		f.Add("sort", "createdAt, dueAt or updatedAt, with a leading - for descending")
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 200 {
		f.Add("limit", "1 to 200")
	}
	offset := 0
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "o:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(raw), "o:") || n < 0 || n > 1_000_000 {
			f.Add("cursor", "a nextCursor from a previous page")
		}
		offset = n
	}
	if err := f.Err("invalid_request", "invalid list query"); err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "unitId", Value: bson.D{{Key: "$regex", Value: org.SubtreeRegex(unit)}}}},
		bson.D{{Key: "gridId", Value: bson.D{{Key: "$regex", Value: org.SubtreeRegex(unit)}}}},
	}}}
	if len(q.Statuses) > 0 {
		in := bson.A{}
		for _, st := range q.Statuses {
			in = append(in, string(st))
		}
		filter = append(filter, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: in}}})
	}
	if q.Category != "" {
		if strings.Contains(q.Category, ".") {
			filter = append(filter, bson.E{Key: "category", Value: q.Category})
		} else {
			filter = append(filter, bson.E{Key: "category", Value: bson.D{{Key: "$regex", Value: "^" + q.Category + `\.`}}})
		}
	}
	if q.Level != 0 {
		filter = append(filter, bson.E{Key: "level", Value: q.Level})
	}
	if q.Overdue != nil {
		filter = append(filter, bson.E{Key: "overdue", Value: *q.Overdue})
	}
	dir := 1
	if desc {
		dir = -1
	}
	opts := options.Find().SetSort(bson.D{{Key: sortField, Value: dir}, {Key: "_id", Value: dir}}).
		SetSkip(int64(offset)).SetLimit(int64(q.Limit + 1))
	docs, err := s.store.find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	page := &ListPage{Items: []Incident{}}
	for i, d := range docs {
		if i == q.Limit {
			page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset+q.Limit)))
			break
		}
		page.Items = append(page.Items, fromDoc(d).Wire())
	}
	return page, nil
}
