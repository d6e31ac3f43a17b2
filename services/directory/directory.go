// Package directory stores the org tree's units and users and applies the commands that
// change them (admin and seed); org holds the rules about codes, roles and scope.
package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collections.
const (
	UnitColl = "units"
	UserColl = "users"
)

// Commands this package handles.
const (
	CmdCreateUnit = "org.createUnit"
	CmdCreateUser = "org.createUser"
	// CmdMoveUser gives a user another home unit (a worker reassigned to a grid).
	CmdMoveUser = "org.moveUser"
)

type unitDoc struct {
	ID       string    `bson:"_id"`
	Name     string    `bson:"name"`
	Level    int       `bson:"level"`
	Parent   string    `bson:"parent,omitempty"`
	Boundary []Vertex  `bson:"boundary,omitempty"`
	Version  int64     `bson:"version"`
	At       time.Time `bson:"at"`
}

type userDoc struct {
	ID           string    `bson:"_id"`
	Name         string    `bson:"name"`
	Roles        []string  `bson:"roles"`
	UnitID       string    `bson:"unitId"`
	PasswordHash string    `bson:"passwordHash"`
	Disabled     bool      `bson:"disabled"`
	CreatedAt    time.Time `bson:"createdAt"`
	Version      int64     `bson:"version"`
	// Assignments is the history of home units, oldest first; the last is current.
	Assignments []assignmentDoc `bson:"assignments,omitempty"`
	// Key is the partition key the user was created under: its writer for good.
	Key string `bson:"_k,omitempty"`
}

type assignmentDoc struct {
	Unit string    `bson:"unit"`
	From time.Time `bson:"from"`
}

// UnitWire is a unit as handsets and the web receive it.
type UnitWire struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Level  int    `json:"level"`
	Parent string `json:"parent,omitempty"`
	// Boundary is the unit's outline, where one was given.
	Boundary []Vertex `json:"boundary,omitempty"`
}

// Service applies org commands and reads units and users.
type Service struct {
	db *mongo.Database

	// units caches each user's assignment history briefly: every pull and push asks,
	// and a move may take this long to reach them.
	mu    sync.Mutex
	units map[string]cachedUnits
}

type cachedUnits struct {
	f       func(time.Time) string
	expires time.Time
}

// UnitsCacheTTL is how long a user's units are cached.
const UnitsCacheTTL = 2 * time.Second

// NewService returns the directory on db.
func NewService(db *mongo.Database) *Service {
	return &Service{db: db, units: map[string]cachedUnits{}}
}

// Register adds the org commands to the write path.
func (s *Service) Register(r *command.Registry) {
	r.Own(UnitColl, UserColl)
	r.Register(CmdCreateUnit, command.Handler{Apply: applyCreateUnit, Keys: func(c *command.Command) []command.Key {
		var a CreateUnitArgs
		_ = json.Unmarshal(c.Args, &a)
		return []command.Key{{Coll: UnitColl, ID: a.ID}}
	}})
	r.Register(CmdMoveUser, command.Handler{Apply: applyMoveUser, Keys: func(c *command.Command) []command.Key {
		var a MoveUserArgs
		_ = json.Unmarshal(c.Args, &a)
		return []command.Key{{Coll: UserColl, ID: a.Login}}
	}})
	r.Register(CmdCreateUser, command.Handler{Apply: applyCreateUser, Keys: func(c *command.Command) []command.Key {
		var a CreateUserArgs
		_ = json.Unmarshal(c.Args, &a)
		return []command.Key{{Coll: UserColl, ID: a.Login}, {Coll: UnitColl, ID: a.UnitID}}
	}})
}

// CreateUnitArgs are the arguments of org.createUnit.
type CreateUnitArgs struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Boundary is the unit's outline (a grid's, drawn on the dashboard's map): 3 to
	// MaxBoundary vertices, not closed. Creating an existing unit again with the same
	// name and another boundary replaces the boundary.
	Boundary []Vertex `json:"boundary,omitempty"`
}

// Vertex is a point of a boundary (WGS 84 degrees).
type Vertex struct {
	Lng float64 `json:"lng" bson:"lng"`
	Lat float64 `json:"lat" bson:"lat"`
}

// MaxBoundary is the most vertices of a unit's boundary.
const MaxBoundary = 2000

// Validate checks the arguments.
func (a CreateUnitArgs) Validate() error {
	f := fault.Fields{}
	if _, err := org.LevelOf(a.ID); err != nil {
		f.Add("id", err.Error())
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Name)); n == 0 || n > 100 {
		f.Add("name", "1 to 100 characters")
	}
	if a.Boundary != nil && (len(a.Boundary) < 3 || len(a.Boundary) > MaxBoundary) {
		f.Add("boundary", fmt.Sprintf("3 to %d vertices", MaxBoundary))
	}
	for _, v := range a.Boundary {
		if !(v.Lat >= -90 && v.Lat <= 90 && v.Lng >= -180 && v.Lng <= 180) {
			f.Add("boundary", "vertices of lng -180..180 and lat -90..90")
		}
	}
	return f.Err("invalid_args", "invalid unit")
}

// canAdmin reports whether a may change the org tree at unit.
func canAdmin(a org.Actor, unit string) bool {
	return a.System || (a.Has(org.RoleAdmin) && a.Sees(unit))
}

func applyCreateUnit(tx *command.Tx, c *command.Command) error {
	var a CreateUnitArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match org.createUnit")
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if !canAdmin(c.Actor, a.ID) {
		return fault.New(fault.Forbidden, "forbidden", "only an admin above this unit can create it")
	}
	lvl, _ := org.LevelOf(a.ID)
	parent := org.Parent(a.ID)
	if parent != "" {
		var p unitDoc
		ok, err := tx.Peek(UnitColl, parent, &p) // the parent may live in another partition
		if err != nil {
			return err
		}
		if !ok {
			return fault.New(fault.Conflict, "no_parent", "create the parent unit "+parent+" first")
		}
	}
	var old unitDoc
	exists, err := tx.Get(UnitColl, a.ID, &old)
	if err != nil {
		return err
	}
	d := unitDoc{ID: a.ID, Name: strings.TrimSpace(a.Name), Level: int(lvl), Parent: parent, Boundary: a.Boundary, Version: 1, At: tx.Now()}
	if exists {
		if old.Name != d.Name {
			return fault.New(fault.Conflict, "already_exists", "unit "+a.ID+" exists with another name")
		}
		if a.Boundary == nil || slices.Equal(old.Boundary, a.Boundary) {
			return nil // creating the same unit again changes nothing
		}
		d.Version, d.At = old.Version+1, old.At
	}
	return tx.Put(command.Record{Coll: UnitColl, ID: d.ID, Version: d.Version, Path: org.PathSubject(d.ID), Doc: d,
		Wire: UnitWire{ID: d.ID, Name: d.Name, Level: d.Level, Parent: d.Parent, Boundary: d.Boundary}})
}

// CreateUserArgs are the arguments of org.createUser. The password arrives hashed:
// plain passwords never enter the command stream.
type CreateUserArgs struct {
	Login        string   `json:"login"`
	Name         string   `json:"name"`
	Roles        []string `json:"roles"`
	UnitID       string   `json:"unitId"`
	PasswordHash string   `json:"passwordHash"`
}

// ValidLogin reports whether s can be a login: 3–32 of a-z, 0-9, '_', '-' (a login
// is also a subject token: per-user records travel on it).
func ValidLogin(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Validate checks the arguments (except the hash, which the caller made).
func (a CreateUserArgs) Validate() error {
	f := fault.Fields{}
	if !ValidLogin(a.Login) {
		f.Add("login", "3 to 32 characters: a-z 0-9 _ -")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Name)); n == 0 || n > 50 {
		f.Add("name", "1 to 50 characters")
	}
	if len(a.Roles) == 0 {
		f.Add("roles", "at least one role")
	}
	for _, r := range a.Roles {
		if !org.ValidRole(r) {
			f.Add("roles", "unknown role "+r)
		}
	}
	if !org.ValidCode(a.UnitID) {
		f.Add("unitId", "a unit code")
	}
	return f.Err("invalid_args", "invalid user")
}

func applyCreateUser(tx *command.Tx, c *command.Command) error {
	var a CreateUserArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match org.createUser")
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if a.PasswordHash == "" {
		return fault.New(fault.Invalid, "invalid_args", "a password is required")
	}
	if !canAdmin(c.Actor, a.UnitID) {
		return fault.New(fault.Forbidden, "forbidden", "only an admin above this unit can create its users")
	}
	var u unitDoc
	ok, err := tx.Get(UnitColl, a.UnitID, &u)
	if err != nil {
		return err
	}
	if !ok {
		return fault.New(fault.Conflict, "no_unit", "unit "+a.UnitID+" does not exist")
	}
	var old userDoc
	exists, err := tx.Get(UserColl, a.Login, &old)
	if err != nil {
		return err
	}
	if exists {
		if c.Actor.System && old.UnitID == a.UnitID {
			return nil // the seed runs again: keep the user as it is
		}
		return fault.New(fault.Conflict, "already_exists", "login "+a.Login+" is taken")
	}
	d := userDoc{ID: a.Login, Name: strings.TrimSpace(a.Name), Roles: a.Roles, UnitID: a.UnitID,
		PasswordHash: a.PasswordHash, CreatedAt: tx.Now(), Version: 1,
		Assignments: []assignmentDoc{{Unit: a.UnitID, From: tx.Now()}}}
	return tx.Put(command.Record{Coll: UserColl, ID: d.ID, Version: 1, Doc: d, Private: true})
}

// MoveUserArgs are the arguments of org.moveUser.
type MoveUserArgs struct {
	Login  string `json:"login"`
	UnitID string `json:"unitId"`
}

func applyMoveUser(tx *command.Tx, c *command.Command) error {
	var a MoveUserArgs
	if err := json.Unmarshal(c.Args, &a); err != nil || !ValidLogin(a.Login) || !org.ValidCode(a.UnitID) {
		return fault.New(fault.Invalid, "invalid_args", "login and a unit code are required")
	}
	var d userDoc
	found, err := tx.Get(UserColl, a.Login, &d)
	if err != nil {
		return err
	}
	if !found || !canAdmin(c.Actor, d.UnitID) {
		return fault.New(fault.NotFound, "not_found", "no such user in the caller's area")
	}
	if !canAdmin(c.Actor, a.UnitID) {
		return fault.New(fault.Forbidden, "forbidden", "the new unit is outside the caller's area")
	}
	var u unitDoc
	if ok, err := tx.Peek(UnitColl, a.UnitID, &u); err != nil {
		return err
	} else if !ok {
		return fault.New(fault.Conflict, "no_unit", "unit "+a.UnitID+" does not exist")
	}
	if d.UnitID == a.UnitID {
		return nil
	}
	if len(d.Assignments) == 0 {
		d.Assignments = []assignmentDoc{{Unit: d.UnitID, From: d.CreatedAt}}
	}
	from := d.UnitID
	d.Assignments = append(d.Assignments, assignmentDoc{Unit: a.UnitID, From: tx.Now()})
	d.UnitID = a.UnitID
	d.Version++
	if err := tx.Put(command.Record{Coll: UserColl, ID: d.ID, Version: d.Version, Doc: d, Private: true}); err != nil {
		return err
	}
	// The user's devices have a new scope: the poker tells them to pull it.
	return tx.Emit(UserMovedEvent, org.PathSubject(a.UnitID), map[string]string{"login": d.ID, "from": from, "to": a.UnitID})
}

// UserMovedEvent is emitted when a user's home unit changes.
const UserMovedEvent = "user.moved"

// PartitionOf returns the partition key a user's commands go to (the user's writer).
func (s *Service) PartitionOf(ctx context.Context, login string) (string, error) {
	d, err := s.userDoc(ctx, login)
	if err != nil || d == nil {
		return "", err
	}
	return d.Key, nil
}

// Units returns a function telling the user's home unit at a time (its first unit
// before it existed, its current one after the last move); nil for an unknown user.
// Queued mutations are judged by the unit their author had when making them.
func (s *Service) UnitsOf(ctx context.Context, login string) (func(time.Time) string, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.units[login]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.f, nil
	}
	f, err := s.unitsOf(ctx, login)
	if err != nil || f == nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.units) > 100_000 {
		s.units = map[string]cachedUnits{}
	}
	s.units[login] = cachedUnits{f: f, expires: now.Add(UnitsCacheTTL)}
	s.mu.Unlock()
	return f, nil
}

// Forget drops a user's cached units (after a move made through this instance).
func (s *Service) Forget(login string) {
	s.mu.Lock()
	delete(s.units, login)
	s.mu.Unlock()
}

func (s *Service) unitsOf(ctx context.Context, login string) (func(time.Time) string, error) {
	d, err := s.userDoc(ctx, login)
	if err != nil || d == nil {
		return nil, err
	}
	as := d.Assignments
	if len(as) == 0 {
		as = []assignmentDoc{{Unit: d.UnitID, From: d.CreatedAt}}
	}
	return func(at time.Time) string {
		for i := len(as) - 1; i > 0; i-- {
			if !as[i].From.After(at) {
				return as[i].Unit
			}
		}
		return as[0].Unit
	}, nil
}

func (s *Service) userDoc(ctx context.Context, login string) (*userDoc, error) {
	var d userDoc
	err := s.db.Collection(UserColl).FindOne(ctx, bson.D{{Key: "_id", Value: login}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fault.Wrap(err, "read user")
	}
	return &d, nil
}

// User reads a user by login; nil when absent.
func (s *Service) User(ctx context.Context, login string) (*org.User, error) {
	var d userDoc
	err := s.db.Collection(UserColl).FindOne(ctx, bson.D{{Key: "_id", Value: login}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fault.Wrap(err, "read user")
	}
	return &org.User{ID: d.ID, Name: d.Name, Roles: d.Roles, UnitID: d.UnitID, PasswordHash: d.PasswordHash,
		Disabled: d.Disabled, CreatedAt: d.CreatedAt}, nil
}

// Units lists the units inside the actor's subtree.
func (s *Service) Units(ctx context.Context, a org.Actor) ([]UnitWire, error) {
	cur, err := s.db.Collection(UnitColl).Find(ctx, bson.D{})
	if err != nil {
		return nil, fault.Wrap(err, "list units")
	}
	var ds []unitDoc
	if err := cur.All(ctx, &ds); err != nil {
		return nil, fault.Wrap(err, "list units")
	}
	out := []UnitWire{}
	for _, d := range ds {
		if a.Sees(d.ID) {
			out = append(out, UnitWire{ID: d.ID, Name: d.Name, Level: d.Level, Parent: d.Parent, Boundary: d.Boundary})
		}
	}
	return out, nil
}

// CountUsers returns the number of users (bootstrap decides on it).
func (s *Service) CountUsers(ctx context.Context) (int64, error) {
	return s.db.Collection(UserColl).CountDocuments(ctx, bson.D{})
}

// Logins lists the active users whose home unit is one of units (nil: any unit) and
// who hold one of roles — the people a notification rule names.
func (s *Service) Logins(ctx context.Context, units []string, roles []string) ([]string, error) {
	filter := bson.D{{Key: "roles", Value: bson.D{{Key: "$in", Value: roles}}}, {Key: "disabled", Value: bson.D{{Key: "$ne", Value: true}}}}
	if units != nil {
		filter = append(filter, bson.E{Key: "unitId", Value: bson.D{{Key: "$in", Value: units}}})
	}
	cur, err := s.db.Collection(UserColl).Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(1000))
	if err != nil {
		return nil, fault.Wrap(err, "find users")
	}
	var ds []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ds); err != nil {
		return nil, fault.Wrap(err, "find users")
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	sort.Strings(out)
	return out, nil
}
