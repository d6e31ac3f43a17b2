// Package demo seeds the demo city of DESIGN §6 — 示范市 → 城关区 → 南关街道 → 大同社区
// with 5 grids, its staff ("one leader, four members" and 26 building leaders), the
// fixed demo logins, 844 households with 3,086 residents (156 floating), 13
// organisations, 6 volunteer teams with 42 activities, and a year of 476 incidents of
// which 469 were resolved — through
// the same command path as everything else. Seeding is idempotent: every step has a
// fixed command id and every command creates only what is absent.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"time"

	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/directory"
	"github.com/gridkeeper/gridkeeper/services/household"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/gridkeeper/gridkeeper/services/volunteer"
)

// Unit codes of the demo city.
const (
	City      = "990100"
	District  = "990102"
	Street    = "990102001"
	Community = "990102001001"
)

// Grid returns the code of demo grid i (1..5).
func Grid(i int) string { return fmt.Sprintf("%s%03d", Community, i) }

// Figures from the source text (大同社区).
const (
	Grids     = 5
	Incidents = 476
	Resolved  = 469
)

// Deps are what seeding uses.
type Deps struct {
	Bus       *command.Bus
	Directory *directory.Service
	Incidents *incident.Service
}

// Options configures seeding.
type Options struct {
	Password   string
	BcryptCost int
	Logger     *slog.Logger
}

// Login is a fixed demo login.
type Login struct {
	Login, Role, Unit string
}

// Logins are the demo logins printed at start and listed in the README.
var Logins = []Login{
	{"worker1", "grid_manager", Grid(1)}, {"worker2", "grid_manager", Grid(2)}, {"worker3", "grid_manager", Grid(3)},
	{"worker4", "grid_manager", Grid(4)}, {"worker5", "grid_manager", Grid(5)},
	{"dispatcher", "dispatcher", Community}, {"street", "supervisor", Street}, {"district", "supervisor", District},
	{"city", "supervisor", City}, {"discipline", "discipline", District}, {"admin", "admin", City},
}

// Report says what seeding found or did.
type Report struct {
	AlreadySeeded bool
	Units, Users  int
	Records       int // households, organisations, teams, activities
	Incidents     int
}

var system = org.SystemActor("demo")

// Seed creates the demo city unless it is complete.
func Seed(ctx context.Context, d Deps, o Options) (*Report, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	admin, err := d.Directory.User(ctx, "admin")
	if err != nil {
		return nil, err
	}
	n, err := incidentsCount(ctx, d)
	if err != nil {
		return nil, err
	}
	if admin != nil && n >= Incidents {
		return &Report{AlreadySeeded: true}, nil
	}
	start := time.Now()
	city := build(d.Incidents.Calendar())
	rep := &Report{}
	// Units level by level: a unit's parent may live in another partition.
	for lvl := org.City; lvl >= org.Grid; lvl-- {
		var reqs []command.Request
		for _, u := range city.units {
			if l, _ := org.LevelOf(u.ID); l == lvl {
				reqs = append(reqs, command.Request{ID: "demo-unit-" + u.ID, Name: directory.CmdCreateUnit,
					Key: org.PartitionKey(u.ID), Actor: system, Args: u})
			}
		}
		if err := run(ctx, d.Bus, reqs); err != nil {
			return nil, fmt.Errorf("demo units: %w", err)
		}
		rep.Units += len(reqs)
	}
	hash, err := auth.HashPassword(o.Password, o.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("demo password: %w", err)
	}
	var reqs []command.Request
	for _, u := range city.users {
		u.PasswordHash = hash
		reqs = append(reqs, command.Request{ID: "demo-user-" + u.Login, Name: directory.CmdCreateUser,
			Key: org.PartitionKey(u.UnitID), Actor: system, Args: u})
	}
	if err := run(ctx, d.Bus, reqs); err != nil {
		return nil, fmt.Errorf("demo users: %w", err)
	}
	rep.Users = len(reqs)
	// The ledgers, then the incident year last: a complete incident year means a
	// complete seed.
	reqs = reqs[:0]
	for _, h := range city.households {
		reqs = append(reqs, command.Request{ID: "demo-" + h.ID, Name: household.CmdImport, Key: org.PartitionKey(h.GridID), Actor: system, Args: h})
	}
	for _, o := range city.organisations {
		reqs = append(reqs, command.Request{ID: "demo-" + o.ID, Name: household.CmdImportOrg, Key: org.PartitionKey(o.GridID), Actor: system, Args: o})
	}
	for _, t := range city.teams {
		reqs = append(reqs, command.Request{ID: "demo-" + t.ID, Name: volunteer.CmdImportTeam, Key: t.CommunityID, Actor: system, Args: t})
	}
	for _, a := range city.activities {
		reqs = append(reqs, command.Request{ID: "demo-" + a.ID, Name: volunteer.CmdImportActivity, Key: a.CommunityID, Actor: system, Args: a})
	}
	// The teams' members are the community's volunteers; the love supermarket opens.
	for _, t := range city.teams {
		for i, m := range t.Members {
			id := fmt.Sprintf("vol-%s-%02d", t.ID, i+1)
			reqs = append(reqs, command.Request{ID: "demo-" + id, Name: volunteer.CmdRegister, Key: t.CommunityID, Actor: system,
				Args: volunteer.RegisterArgs{VolunteerID: id, CommunityID: t.CommunityID, Name: m, TeamIDs: []string{t.ID}}})
		}
	}
	for _, it := range Supermarket {
		it.CommunityID = Community
		reqs = append(reqs, command.Request{ID: "demo-" + it.ItemID, Name: volunteer.CmdStock, Key: Community, Actor: system, Args: it})
	}
	rep.Records = len(reqs)
	if err := runChunks(ctx, d.Bus, reqs); err != nil {
		return nil, fmt.Errorf("demo ledgers: %w", err)
	}
	reqs = nil
	for _, inc := range city.incidents {
		reqs = append(reqs, command.Request{ID: "demo-incident-" + inc.ID, Name: incident.CmdImport,
			Key: org.PartitionKey(inc.ScopeUnit()), Actor: system, Args: inc})
	}
	if err := runChunks(ctx, d.Bus, reqs); err != nil {
		return nil, fmt.Errorf("demo incidents: %w", err)
	}
	rep.Incidents = len(reqs)
	o.Logger.Info("demo city seeded", "units", rep.Units, "users", rep.Users, "records", rep.Records,
		"incidents", rep.Incidents, "took", time.Since(start).Round(time.Millisecond))
	return rep, nil
}

func runChunks(ctx context.Context, bus *command.Bus, reqs []command.Request) error {
	for len(reqs) > 0 {
		k := min(len(reqs), 250)
		if err := run(ctx, bus, reqs[:k]); err != nil {
			return err
		}
		reqs = reqs[k:]
	}
	return nil
}

func incidentsCount(ctx context.Context, d Deps) (int64, error) {
	return d.Incidents.Count(ctx)
}

func run(ctx context.Context, bus *command.Bus, reqs []command.Request) error {
	outs, err := bus.DoAll(ctx, reqs, 2*time.Minute)
	if err != nil {
		return err
	}
	for i, o := range outs {
		if err := o.Err(); err != nil {
			return fmt.Errorf("%s %s: %w", reqs[i].Name, reqs[i].ID, err)
		}
	}
	return nil
}

// Bootstrap creates user "admin" at the root when no user exists at all, so a
// deployment without the demo can be administered. With no password given, one is
// generated and returned so the caller can print it once.
func Bootstrap(ctx context.Context, d Deps, password string, cost int) (string, error) {
	n, err := d.Directory.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	generated := ""
	if password == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		password = base64.RawURLEncoding.EncodeToString(b)
		generated = password
	}
	hash, err := auth.HashPassword(password, cost)
	if err != nil {
		return "", err
	}
	reqs := []command.Request{
		{ID: "bootstrap-unit-" + City, Name: directory.CmdCreateUnit, Key: City, Actor: system, Args: directory.CreateUnitArgs{ID: City, Name: "本市"}},
	}
	if err := run(ctx, d.Bus, reqs); err != nil {
		return "", err
	}
	reqs = []command.Request{{ID: "bootstrap-admin", Name: directory.CmdCreateUser, Key: City, Actor: system,
		Args: directory.CreateUserArgs{Login: "admin", Name: "管理员", Roles: []string{org.RoleAdmin}, UnitID: City, PasswordHash: hash}}}
	return generated, run(ctx, d.Bus, reqs)
}
