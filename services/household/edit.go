package household

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Handset mutations on households.
const (
	CmdCreate = "household.create"
	CmdUpdate = "household.update"
)

// ConflictColl holds the conflicts of offline edits: delivered to their author in
// pulls and listed for the supervisors of the unit.
const ConflictColl = "conflicts"

// Editable fields of a household and what each holds. An update sets any of them; each
// is merged on its own.
var editable = []string{"building", "unit", "room", "address", "members", "tags"}

// stored is a household with the version at which each field last changed, so
// concurrent offline edits merge field by field.
type stored struct {
	Household     `bson:",inline"`
	FieldVersions map[string]int64 `bson:"fieldVersions"`
}

// Conflict is an offline edit of a field that lost to a newer one.
type Conflict struct {
	ID          string          `json:"id" bson:"_id"`
	Collection  string          `json:"collection" bson:"collection"`
	RecordID    string          `json:"recordId" bson:"recordId"`
	Field       string          `json:"field" bson:"field"`
	Yours       json.RawMessage `json:"yours" bson:"-"`
	Kept        json.RawMessage `json:"kept" bson:"-"`
	YoursText   string          `json:"-" bson:"yours"`
	KeptText    string          `json:"-" bson:"kept"`
	BaseVersion int64           `json:"baseVersion" bson:"baseVersion"`
	Version     int64           `json:"version" bson:"version"` // the record's version when judged
	Rule        string          `json:"rule" bson:"rule"`
	Author      string          `json:"author" bson:"author"`
	MutationID  int64           `json:"mutationId,omitempty" bson:"mutationId,omitempty"`
	Unit        string          `json:"unit" bson:"unit"` // the record's grid
	At          time.Time       `json:"at" bson:"at"`
}

// RuleFieldChanged is the rule that decides a conflict: the field changed after the
// version the offline edit was based on, so the change already made is kept.
const RuleFieldChanged = "field_changed_since_base: the change committed first is kept"

// CreateArgs are the arguments of household.create.
type CreateArgs struct {
	HouseholdID string   `json:"householdId"`
	GridID      string   `json:"gridId"`
	Building    string   `json:"building"`
	Unit        string   `json:"unit"`
	Room        string   `json:"room"`
	Address     string   `json:"address"`
	Members     []Member `json:"members"`
	Tags        []string `json:"tags"`
}

// UpdateArgs are the arguments of household.update: the fields to set and the version
// of the household the edit was made on.
type UpdateArgs struct {
	HouseholdID string                     `json:"householdId"`
	BaseVersion int64                      `json:"baseVersion"`
	Set         map[string]json.RawMessage `json:"set"`
}

// RegisterEdits adds the handset mutations on households.
func RegisterEdits(r *command.Registry) {
	r.Own(ConflictColl)
	key := command.ArgKey(Coll, "householdId")
	r.Register(CmdCreate, command.Handler{Apply: applyCreate, Keys: key})
	r.Register(CmdUpdate, command.Handler{Apply: applyUpdate, Keys: key})
}

// Router routes household mutations to the partition of the household's grid: a
// create claims the id (ids are made on handsets), an update goes where it was claimed.
type Router struct {
	DB     *mongo.Database
	Routes *command.Routes
}

// Route returns the partition key of a household mutation.
func (rt Router) Route(ctx context.Context, a org.Actor, name string, args json.RawMessage) (string, error) {
	fallback := org.PartitionKey(a.UnitID)
	var x struct {
		HouseholdID string `json:"householdId"`
		GridID      string `json:"gridId"`
	}
	if json.Unmarshal(args, &x) != nil {
		return fallback, nil
	}
	if name == CmdCreate {
		g := gridOf(a, x.GridID)
		if g == "" || !command.ValidToken(x.HouseholdID) {
			return fallback, nil
		}
		return rt.Routes.Claim(ctx, Coll, x.HouseholdID, org.PartitionKey(g))
	}
	if !command.ValidToken(x.HouseholdID) {
		return fallback, nil
	}
	// Imported households were never claimed: the stored record knows its writer.
	key, err := rt.Routes.Writer(ctx, rt.DB, Coll, x.HouseholdID)
	if err != nil || key != "" {
		return key, err
	}
	return fallback, nil
}

func gridOf(a org.Actor, grid string) string {
	if grid == "" {
		if l, err := org.LevelOf(a.UnitID); err == nil && l == org.Grid {
			return a.UnitID
		}
		return ""
	}
	return grid
}

// loadEditable reads a household the caller may change (edit it, log a visit): one of
// its area — another is not found — and a role that keeps the ledgers.
func loadEditable(tx *command.Tx, c *command.Command, id string) (*stored, error) {
	var st stored
	found, err := tx.Get(Coll, id, &st)
	if err != nil {
		return nil, err
	}
	if !found || !(c.Actor.System || c.Actor.Sees(st.GridID)) {
		return nil, fault.New(fault.NotFound, "not_found", "no such household")
	}
	if !canEdit(c.Actor, st.GridID) {
		return nil, fault.New(fault.Forbidden, "forbidden", "this role does not keep the households' ledgers")
	}
	return &st, nil
}

func canEdit(a org.Actor, grid string) bool {
	return a.System || ((a.IsGridWorker() || a.Has(org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader)) && a.Sees(grid))
}

func validate(f fault.Fields, field string, raw json.RawMessage, h *Household) {
	var err error
	str := func(dst *string, max int) {
		if err = json.Unmarshal(raw, dst); err == nil && utf8.RuneCountInString(*dst) > max {
			err = fmt.Errorf("at most %d characters", max)
		}
	}
	switch field {
	case "building":
		str(&h.Building, 50)
	case "unit":
		str(&h.Unit, 50)
	case "room":
		str(&h.Room, 50)
	case "address":
		str(&h.Address, 200)
	case "members":
		var ms []Member
		if err = json.Unmarshal(raw, &ms); err == nil {
			if len(ms) > 50 {
				err = fmt.Errorf("at most 50 members")
			}
			for i := range ms {
				m := &ms[i]
				if n := utf8.RuneCountInString(strings.TrimSpace(m.Name)); n == 0 || n > 50 {
					err = fmt.Errorf("each member needs a name of 1 to 50 characters")
				}
				for _, t := range m.Tags {
					if !slices.Contains(Tags, t) {
						err = fmt.Errorf("unknown tag %q", t)
					}
				}
				if perr := checkPersonal(m); perr != nil {
					err = fmt.Errorf("members[%d].%v", i, perr)
				}
			}
			h.Members = ms
		}
	case "tags":
		var ts []string
		if err = json.Unmarshal(raw, &ts); err == nil {
			for _, t := range ts {
				if !slices.Contains(Tags, t) {
					err = fmt.Errorf("unknown tag %q", t)
				}
			}
			h.Tags = ts
		}
	default:
		err = fmt.Errorf("not an editable field (%s)", strings.Join(editable, ", "))
	}
	if err != nil {
		f.Add(field, err.Error())
	}
}

func applyCreate(tx *command.Tx, c *command.Command) error {
	var a CreateArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match household.create")
	}
	grid := gridOf(c.Actor, a.GridID)
	f := fault.Fields{}
	if !command.ValidToken(a.HouseholdID) {
		f.Add("householdId", "1 to 128 of a-z A-Z 0-9 - _ (a UUIDv7 made on the handset)")
	}
	if l, err := org.LevelOf(grid); err != nil || l != org.Grid {
		f.Add("gridId", "a grid code (required above the grid level)")
	}
	var h Household
	for field, v := range map[string]any{"building": a.Building, "unit": a.Unit, "room": a.Room, "address": a.Address, "members": a.Members, "tags": a.Tags} {
		raw, _ := json.Marshal(v)
		validate(f, field, raw, &h)
	}
	if strings.TrimSpace(a.Address) == "" && strings.TrimSpace(a.Building) == "" {
		f.Add("address", "an address or a building is required")
	}
	if err := f.Err("invalid_args", "invalid household"); err != nil {
		return err
	}
	if !canEdit(c.Actor, grid) {
		return fault.New(fault.Forbidden, "out_of_scope", "the grid is outside the caller's area")
	}
	var old stored
	if found, err := tx.Get(Coll, a.HouseholdID, &old); err != nil {
		return err
	} else if found {
		return fault.New(fault.Conflict, "already_exists", "a household with this id exists")
	}
	now := tx.Now()
	h.ID, h.GridID, h.CreatedAt, h.UpdatedAt, h.Version = a.HouseholdID, grid, now, now, 1
	if h.Members == nil {
		h.Members = []Member{}
	}
	ms, err := sealMembers(h.ID, c.ID, h.Members, nil)
	if err != nil {
		return err
	}
	h.Members = ms
	st := stored{Household: h, FieldVersions: map[string]int64{}}
	for _, fl := range editable {
		st.FieldVersions[fl] = 1
	}
	return tx.Put(command.Record{Coll: Coll, ID: h.ID, Version: 1, Path: org.PathSubject(grid), Doc: st, Wire: h.Wire()})
}

// applyUpdate merges an edit field by field: a field that has not changed since the
// edit's base version takes the new value; one that has keeps the value committed
// first, and the losing edit is reported as a conflict to its author and listed for
// the unit's supervisors.
func applyUpdate(tx *command.Tx, c *command.Command) error {
	var a UpdateArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match household.update")
	}
	if !command.ValidToken(a.HouseholdID) || a.BaseVersion < 1 || len(a.Set) == 0 {
		return fault.New(fault.Invalid, "invalid_args", "householdId, baseVersion (≥ 1) and at least one field in set are required")
	}
	st, err := loadEditable(tx, c, a.HouseholdID)
	if err != nil {
		return err
	}
	if st.FieldVersions == nil {
		st.FieldVersions = map[string]int64{} // imported: every field as of version 1
	}
	if a.BaseVersion > st.Version {
		return fault.New(fault.Invalid, "invalid_args", "baseVersion is newer than the household")
	}
	next := st.Household
	f := fault.Fields{}
	for field, raw := range a.Set {
		validate(f, field, raw, &next)
	}
	if err := f.Err("invalid_args", "invalid household edit"); err != nil {
		return err
	}
	merged := st.Household
	merged.Version = st.Version + 1
	changed := false
	fields := make([]string, 0, len(a.Set))
	for field := range a.Set {
		fields = append(fields, field)
	}
	slices.Sort(fields)
	for _, field := range fields {
		if st.FieldVersions[field] > a.BaseVersion {
			// Both sides as anyone may see them: personal numbers masked.
			kept, _ := json.Marshal(fieldValue(ptr(st.Household.Wire()), field))
			yours := a.Set[field]
			if field == "members" {
				yours, _ = json.Marshal(maskMembers(st.ID, next.Members))
			}
			cf := Conflict{
				ID: c.ID + "-" + field, Collection: Coll, RecordID: st.ID, Field: field,
				YoursText: string(yours), KeptText: string(kept), BaseVersion: a.BaseVersion, Version: st.Version,
				Rule: RuleFieldChanged, Author: c.Actor.UserID, MutationID: c.MutationID, Unit: st.GridID, At: tx.Now(),
			}
			cf.Yours, cf.Kept = yours, kept
			if err := tx.Put(command.Record{Coll: ConflictColl, ID: cf.ID, Version: 1, Path: org.UserPath(c.Actor.UserID), Doc: cf, Wire: cf}); err != nil {
				return err
			}
			continue
		}
		if field == "members" {
			// Sealed only when the edit wins: a losing one is a conflict, not a refusal.
			ms, err := sealMembers(st.ID, c.ID, next.Members, st.Members)
			if err != nil {
				return err
			}
			next.Members = ms
		}
		setField(&merged, &next, field)
		st.FieldVersions[field] = merged.Version
		changed = true
	}
	if !changed {
		return nil // every field lost: the conflicts say why
	}
	merged.UpdatedAt = tx.Now()
	st.Household = merged
	return tx.Put(command.Record{Coll: Coll, ID: st.ID, Version: merged.Version, Path: org.PathSubject(st.GridID), Doc: *st, Wire: merged.Wire()})
}

func fieldValue(h *Household, field string) any {
	switch field {
	case "building":
		return h.Building
	case "unit":
		return h.Unit
	case "room":
		return h.Room
	case "address":
		return h.Address
	case "members":
		return h.Members
	case "tags":
		return h.Tags
	}
	return nil
}

func setField(dst, src *Household, field string) {
	switch field {
	case "building":
		dst.Building = src.Building
	case "unit":
		dst.Unit = src.Unit
	case "room":
		dst.Room = src.Room
	case "address":
		dst.Address = src.Address
	case "members":
		dst.Members = src.Members
	case "tags":
		dst.Tags = src.Tags
	}
}

func ptr[T any](v T) *T { return &v }

// SetPlans puts visit plans in force (at start, and when an admin changes them).
func (s *Service) SetPlans(p Plans) { s.plans.Store(&p) }

// Plans returns the visit plans in force.
func (s *Service) Plans() Plans {
	if p := s.plans.Load(); p != nil {
		return *p
	}
	return Plans{}
}

// Service reads household data outside the write path.
type Service struct {
	DB    *mongo.Database
	JS    jetstream.JetStream
	Names command.Names
	Bus   *command.Bus
	// Calendar is the working days visits are due on.
	Calendar func() *workday.Calendar
	// plans are the visit plans in force (SetPlans).
	plans atomic.Pointer[Plans]
}

// Conflicts lists the conflicts of records in the actor's subtree, newest first (for
// supervisors), at most limit.
func (s *Service) Conflicts(ctx context.Context, a org.Actor, limit int) ([]Conflict, error) {
	if !a.Has(org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader) {
		return nil, fault.New(fault.Forbidden, "forbidden", "conflicts are listed for dispatchers and supervisors")
	}
	cur, err := s.DB.Collection(ConflictColl).Find(ctx, bson.D{})
	if err != nil {
		return nil, fault.Wrap(err, "list conflicts")
	}
	var all []Conflict
	if err := cur.All(ctx, &all); err != nil {
		return nil, fault.Wrap(err, "list conflicts")
	}
	out := []Conflict{}
	for _, cf := range all {
		if a.Sees(cf.Unit) {
			cf.Yours, cf.Kept = json.RawMessage(cf.YoursText), json.RawMessage(cf.KeptText)
			out = append(out, cf)
		}
	}
	slices.SortFunc(out, func(x, y Conflict) int { return y.At.Compare(x.At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
