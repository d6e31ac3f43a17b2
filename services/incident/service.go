package incident

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/attachment"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// Mutation names this package handles.
const (
	CmdReport = "incident.report"
	CmdAccept = "incident.accept"
	// CmdImport records a historical incident (demo seed, migrations); system only.
	CmdImport = "incident.import"
	// CmdRoute is the router's decision on a reported item; system only.
	CmdRoute = "incident.route"
)

// Service holds the incident rules and their inputs.
type Service struct {
	store    *Store
	feed     *command.Feed
	catalog  atomic.Pointer[Catalog]
	matrix   atomic.Pointer[Matrix]
	sla      atomic.Pointer[SLAOptions]
	calendar atomic.Pointer[workday.Calendar]

	// routes is the global table of which partition owns each incident id: a report
	// claims its id there, follow-ups find their writer there even before the report
	// is applied, and a report reusing another partition's id goes to that partition
	// (which refuses it) instead of overwriting the record.
	routes *command.Routes
}

// NewService returns the incident service.
func NewService(store *Store, feed *command.Feed, routes *command.Routes, cat *Catalog, m *Matrix, cal *workday.Calendar) *Service {
	s := &Service{store: store, feed: feed, routes: routes}
	s.catalog.Store(cat)
	s.matrix.Store(m)
	s.sla.Store(&SLAOptions{WarnBefore: 2 * time.Hour, UrgentAccept: time.Hour})
	s.calendar.Store(cal)
	return s
}

// SetSLA replaces the deadline settings.
func (s *Service) SetSLA(o SLAOptions) { s.sla.Store(&o) }

// Catalog returns the current categories.
func (s *Service) Catalog() *Catalog { return s.catalog.Load() }

// Register adds the incident commands to the write path.
func (s *Service) Register(r *command.Registry) {
	r.Own(Coll)
	keys := command.ArgKey(Coll, "incidentId")
	r.Register(CmdReport, command.Handler{Apply: s.applyReport, Keys: keys})
	for _, act := range []Action{ActAccept, ActAssign, ActStart, ActResolve, ActVerify, ActReopen, ActEscalate,
		ActRefuse, ActDelayReq, ActDelayOK, ActMerge, ActComment, ActRate, ActHandDown, ActTakeOver} {
		r.Register("incident."+string(act), command.Handler{Apply: s.applyMove(act), Keys: keys})
	}
	r.Register(CmdImport, command.Handler{Apply: s.applyImport, Keys: command.ArgKey(Coll, "id")})
	r.Register(CmdRoute, command.Handler{Apply: s.applyRoute, Keys: keys})
	r.Register(CmdSLA, command.Handler{Apply: s.applySLA, Keys: keys})
}

// Get returns one incident if the actor may see it. An incident outside the actor's
// scope is reported as not found, so ids cannot be probed across scopes.
func (s *Service) Get(ctx context.Context, a org.Actor, id string) (*Incident, error) {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return nil, fault.New(fault.NotFound, "not_found", "no such incident")
	}
	// Read from the change feed: one direct get, where the database would scan.
	c, _, err := s.feed.Latest(ctx, Coll, id)
	if err != nil {
		return nil, err
	}
	var inc Incident
	if c == nil || json.Unmarshal(c.Doc, &inc) != nil || !canSee(a, &inc) {
		return nil, fault.New(fault.NotFound, "not_found", "no such incident")
	}
	return &inc, nil
}

func canSee(a org.Actor, inc *Incident) bool {
	return a.Sees(inc.ScopeUnit()) || a.Sees(inc.UnitID) || inc.ReporterID == a.UserID
}

// Route returns the partition key of an incident mutation: the community of the grid
// it happens in. An incident keeps its key for life, so its writer never changes.
func (s *Service) Route(ctx context.Context, a org.Actor, name string, args json.RawMessage) (string, error) {
	fallback := org.PartitionKey(a.UnitID)
	switch name {
	case CmdReport:
		var ra ReportArgs
		if json.Unmarshal(args, &ra) != nil {
			return fallback, nil
		}
		grid, unit, err := reportPlace(a, ra.GridID)
		if err != nil {
			return fallback, nil
		}
		key := org.PartitionKey(firstNonEmpty(grid, unit))
		if !validID(ra.IncidentID) {
			return key, nil
		}
		return s.routes.Claim(ctx, Coll, ra.IncidentID, key)
	default:
		var ia struct {
			IncidentID string `json:"incidentId"`
		}
		if json.Unmarshal(args, &ia) != nil || ia.IncidentID == "" {
			return fallback, nil
		}
		if _, err := uuid.Parse(ia.IncidentID); err != nil {
			return fallback, nil
		}
		key, err := s.routes.Owner(ctx, Coll, ia.IncidentID)
		if err != nil {
			return "", err
		}
		if key != "" {
			return key, nil
		}
		// Imported incidents (the demo) were never claimed: the feed subject carries
		// their place, which decides their writer.
		_, path, err := s.feed.Latest(ctx, Coll, ia.IncidentID)
		if err != nil {
			return "", err
		}
		if unit := unitOfPath(path); unit != "" {
			return org.PartitionKey(unit), nil
		}
		return fallback, nil
	}
}

// ReportArgs are the arguments of incident.report.
type ReportArgs struct {
	IncidentID  string     `json:"incidentId"`
	Category    string     `json:"category"`
	Description string     `json:"description"`
	Location    *Point     `json:"location"`
	Address     string     `json:"address"`
	Photos      []string   `json:"photos"`
	Requester   *Requester `json:"requester"`
	Urgent      bool       `json:"urgent"`
	GridID      string     `json:"gridId"`
	Source      string     `json:"source"`
}

var (
	sources = map[string]bool{"patrol": true, "resident": true, "hotline": true, "assigned": true}
)

// Limits on report fields.
const (
	MaxDescription = 2000
	MaxAddress     = 200
)

func (s *Service) validateReport(ra *ReportArgs) error {
	f := fault.Fields{}
	if !validID(ra.IncidentID) {
		f.Add("incidentId", "must be a UUIDv7 in canonical lower-case form")
	}
	if ra.Category == "" {
		f.Add("category", "required")
	} else if _, ok := s.Catalog().Find(ra.Category); !ok {
		f.Add("category", "unknown category")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(ra.Description)); n == 0 {
		f.Add("description", "required")
	} else if n > MaxDescription || !utf8.ValidString(ra.Description) {
		f.Add("description", "at most 2000 characters of valid UTF-8")
	}
	if ra.Location == nil {
		f.Add("location", "required")
	} else if ra.Location.Lat < -90 || ra.Location.Lat > 90 || ra.Location.Lng < -180 || ra.Location.Lng > 180 ||
		(ra.Location.Lat == 0 && ra.Location.Lng == 0) {
		f.Add("location", "lat must be within ±90 and lng within ±180")
	}
	if utf8.RuneCountInString(ra.Address) > MaxAddress {
		f.Add("address", "at most 200 characters")
	}
	attachment.CheckPhotos(f, "photos", ra.Photos)
	if r := ra.Requester; r != nil {
		if n := utf8.RuneCountInString(r.Name); n == 0 || n > 50 {
			f.Add("requester.name", "1 to 50 characters")
		}
		if r.Phone != "" && !org.ValidMobile(r.Phone) {
			f.Add("requester.phone", org.MobileProblem)
		}
	}
	if ra.Source != "" && !sources[ra.Source] {
		f.Add("source", "one of patrol, resident, hotline, assigned")
	}
	if ra.GridID != "" {
		if l, err := org.LevelOf(ra.GridID); err != nil || l != org.Grid {
			f.Add("gridId", "must be a grid code (15 digits)")
		}
	}
	return f.Err("invalid_args", "the mutation's arguments are invalid")
}

func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.Version() == 7 && u.String() == id
}

// reportPlace decides the grid and the unit a report belongs to: a grid worker reports
// in its own grid; someone above may name a grid of its subtree, or report at its own
// community.
func reportPlace(a org.Actor, gridID string) (grid, unit string, err error) {
	lvl, lerr := org.LevelOf(a.UnitID)
	if lerr != nil {
		return "", "", fault.New(fault.Forbidden, "forbidden", "the caller has no valid home unit")
	}
	switch {
	case lvl == org.Grid:
		if gridID != "" && gridID != a.UnitID {
			return "", "", fault.New(fault.Forbidden, "out_of_scope", "a grid worker reports in its own grid")
		}
		return a.UnitID, "", nil
	case gridID != "":
		if !a.Sees(gridID) {
			return "", "", fault.New(fault.Forbidden, "out_of_scope", "the grid is outside the caller's area")
		}
		return gridID, "", nil
	case lvl == org.Community:
		return "", a.UnitID, nil
	}
	return "", "", fault.New(fault.Invalid, "invalid_args", "gridId is required above the community level")
}

func (s *Service) applyReport(tx *command.Tx, c *command.Command) error {
	var ra ReportArgs
	if err := json.Unmarshal(c.Args, &ra); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match incident.report")
	}
	if err := s.validateReport(&ra); err != nil {
		return err
	}
	a := c.Actor
	if !a.System && !a.IsGridWorker() && !a.Has(org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader) {
		return fault.New(fault.Forbidden, "forbidden", "this role cannot report incidents")
	}
	grid, unit, err := reportPlace(a, ra.GridID)
	if err != nil {
		return err
	}
	var existing doc
	found, err := tx.Get(Coll, ra.IncidentID, &existing)
	if err != nil {
		return err
	}
	if found {
		return fault.New(fault.Conflict, "already_exists", "an incident with this id exists")
	}
	cat, _ := s.Catalog().Find(ra.Category)
	owner := firstNonEmpty(org.CommunityOf(grid), unit)
	now := tx.Now()
	src := ra.Source
	if src == "" {
		src = "patrol"
	}
	inc := &Incident{
		ID: ra.IncidentID, Status: Reported, Level: int(org.Community), UnitID: owner, GridID: grid,
		Category: ra.Category, Description: strings.TrimSpace(ra.Description), Location: *ra.Location,
		Address: ra.Address, Photos: ra.Photos, Urgent: ra.Urgent, Special: cat.Special, Source: src,
		Requester: ra.Requester, ReporterID: a.UserID, CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	if inc.Photos == nil {
		inc.Photos = []string{}
	}
	inc.History = []HistoryEntry{{At: now, By: a.UserID, Device: a.DeviceID, Action: string(ActReport), To: Reported, Unit: owner}}
	s.arrive(inc, now)
	return s.put(tx, inc, "incident.reported")
}

// dueAfterAccept applies 限时办结: 1 working day, 3 for special categories. Items handed
// down from above keep the deadline already set.
func (s *Service) dueAfterAccept(inc *Incident, now time.Time) *time.Time {
	if inc.DueAt != nil {
		return inc.DueAt
	}
	n := 1
	if inc.Special {
		n = 3
	}
	due, err := s.calendar.Load().Due(now, n)
	if errors.Is(err, workday.ErrOutOfRange) {
		// No calendar for this year yet: count plain days rather than stop work.
		due = now.Add(time.Duration(n) * 24 * time.Hour)
	} else if err != nil {
		return nil
	}
	due = due.UTC().Truncate(time.Millisecond)
	return &due
}

// applyImport stores a complete historical incident as given (system only).
func (s *Service) applyImport(tx *command.Tx, c *command.Command) error {
	if !c.Actor.System {
		return fault.New(fault.Forbidden, "forbidden", "incident.import is for the server only")
	}
	var inc Incident
	if err := json.Unmarshal(c.Args, &inc); err != nil || !validID(inc.ID) {
		return fault.New(fault.Invalid, "invalid_args", "a complete incident with a UUIDv7 id")
	}
	var existing doc
	found, err := tx.Get(Coll, inc.ID, &existing)
	if err != nil || found {
		return err // importing twice changes nothing
	}
	return s.put(tx, &inc, "")
}

// load reads an incident for a command by actor; one the actor may not see is
// reported as not found.
func (s *Service) load(tx *command.Tx, a org.Actor, id string) (*Incident, error) {
	var d doc
	found, err := tx.Get(Coll, id, &d)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fault.New(fault.NotFound, "not_found", "no such incident")
	}
	inc := fromDoc(d)
	if !a.System && !canSee(a, inc) {
		return nil, fault.New(fault.NotFound, "not_found", "no such incident")
	}
	return inc, nil
}

func (s *Service) put(tx *command.Tx, inc *Incident, event string) error {
	scope := inc.ScopeUnit()
	path := org.PathSubject(scope)
	key := inc.key
	if key == "" {
		key = org.PartitionKey(scope)
	}
	if err := tx.Put(command.Record{Coll: Coll, ID: inc.ID, Version: inc.Version, Path: path, Doc: toDoc(inc, key, path), Wire: inc.Wire()}); err != nil {
		return err
	}
	for _, p := range inc.Photos {
		tx.Reference(p, inc.ID, scope)
	}
	if err := s.syncTimers(tx, inc); err != nil {
		return err
	}
	if event == "" {
		return nil
	}
	return tx.Emit(event, org.PathSubject(inc.UnitID), inc.Wire())
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// Count returns the number of stored incidents.
func (s *Service) Count(ctx context.Context) (int64, error) { return s.store.Count(ctx) }

// Calendar returns the working-day calendar in force.
func (s *Service) Calendar() *workday.Calendar { return s.calendar.Load() }

// unitOfPath returns the lowest unit of a scope path ("city.district.street.community.grid",
// "_" where absent).
func unitOfPath(path string) string {
	toks := strings.Split(path, ".")
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i] != "_" && toks[i] != "" {
			return toks[i]
		}
	}
	return ""
}
