package volunteer

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/attachment"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Love points 爱心积分: volunteers earn points for the hours they serve, by the rules of
// schemas/points.json, and spend them at the love supermarket 爱心超市. Every change of
// a balance is an entry of an append-only ledger. Volunteers, the catalogue, the
// ledger and the balances of a community live in its partition: its one writer
// applies every earning and every redemption in turn, so a balance never goes below
// zero and stock never below zero, however many redeem at once — with no locks and no
// transactions, on FerretDB as on MongoDB.

// Collections.
const (
	VolunteerColl = "volunteers"
	LedgerColl    = "points"
	ItemColl      = "supermarket"
)

// Commands.
const (
	CmdRegister = "volunteer.register"
	CmdTeam     = "volunteer.createTeam"
	CmdRecord   = "volunteer.recordActivity"
	CmdStock    = "supermarket.stock"
	CmdRedeem   = "supermarket.redeem"
)

// Rules are the earning rules: points per hour, by activity kind.
type Rules struct {
	PerHour int            `json:"perHour"`
	Kinds   map[string]int `json:"kinds"`
}

// ParseRules reads schemas/points.json.
func ParseRules(data []byte) (Rules, error) {
	var doc struct {
		Version int            `json:"version"`
		Note    string         `json:"note"`
		PerHour *int           `json:"perHour"`
		Kinds   map[string]int `json:"kinds"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt member must not set every rate to 0
	if err := dec.Decode(&doc); err != nil {
		return Rules{}, fmt.Errorf("points: %w", err)
	}
	if doc.PerHour == nil {
		return Rules{}, fmt.Errorf("points: perHour is required")
	}
	r := Rules{PerHour: *doc.PerHour, Kinds: doc.Kinds}
	if r.PerHour < 0 || r.PerHour > 1000 {
		return r, fmt.Errorf("points: perHour 0..1000")
	}
	for k, v := range r.Kinds {
		if v < 0 || v > 1000 {
			return r, fmt.Errorf("points: %s: 0..1000 per hour", k)
		}
	}
	return r, nil
}

// Points is what hours of an activity of kind earn.
func (r Rules) Points(kind string, hours float64) int {
	rate := r.PerHour
	if v, ok := r.Kinds[kind]; ok {
		rate = v
	}
	return int(math.Round(hours * float64(rate)))
}

// Volunteer is a volunteer of a community with the balance of their love points.
type Volunteer struct {
	ID          string   `json:"id" bson:"_id"`
	CommunityID string   `json:"communityId" bson:"communityId"`
	Name        string   `json:"name" bson:"name"`
	TeamIDs     []string `json:"teamIds,omitempty" bson:"teamIds,omitempty"`
	Balance     int      `json:"balance" bson:"balance"`
	Earned      int      `json:"earned" bson:"earned"` // all points ever earned: the leaderboard
	Hours       float64  `json:"hours" bson:"hours"`
	Version     int64    `json:"version" bson:"version"`
}

// Entry is one line of the points ledger.
type Entry struct {
	ID           string    `json:"id" bson:"_id"`
	VolunteerID  string    `json:"volunteerId" bson:"volunteerId"`
	CommunityID  string    `json:"communityId" bson:"communityId"`
	Delta        int       `json:"delta" bson:"delta"`
	BalanceAfter int       `json:"balanceAfter" bson:"balanceAfter"`
	Reason       string    `json:"reason" bson:"reason"` // activity, redemption
	ActivityID   string    `json:"activityId,omitempty" bson:"activityId,omitempty"`
	RedemptionID string    `json:"redemptionId,omitempty" bson:"redemptionId,omitempty"`
	ItemID       string    `json:"itemId,omitempty" bson:"itemId,omitempty"`
	Quantity     int       `json:"quantity,omitempty" bson:"quantity,omitempty"`
	Hours        float64   `json:"hours,omitempty" bson:"hours,omitempty"`
	By           string    `json:"by" bson:"by"`
	At           time.Time `json:"at" bson:"at"`
	Version      int64     `json:"version" bson:"version"`
}

// Item is a love-supermarket article.
type Item struct {
	ID          string `json:"id" bson:"_id"`
	CommunityID string `json:"communityId" bson:"communityId"`
	Name        string `json:"name" bson:"name"`
	Points      int    `json:"points" bson:"points"`
	Stock       int    `json:"stock" bson:"stock"`
	Version     int64  `json:"version" bson:"version"`
}

// Points applies the points commands; Rules are the earning rules.
type Points struct {
	DB  *mongo.Database
	Bus *command.Bus
	// rules are the earning rules in force (SetRules).
	rules atomic.Pointer[Rules]
}

// SetRules puts earning rules in force (at start, and when an admin changes them).
func (p *Points) SetRules(r Rules) { p.rules.Store(&r) }

// Rules returns the earning rules in force.
func (p *Points) Rules() Rules {
	if r := p.rules.Load(); r != nil {
		return *r
	}
	return Rules{}
}

// Register adds the volunteer and supermarket commands to the write path.
func (p *Points) Register(r *command.Registry) {
	r.Own(VolunteerColl, LedgerColl, ItemColl)
	r.Register(CmdRegister, command.Handler{Apply: p.applyRegister, Keys: command.ArgKey(VolunteerColl, "volunteerId")})
	r.Register(CmdTeam, command.Handler{Apply: p.applyCreateTeam, Keys: command.ArgKey(TeamColl, "teamId")})
	r.Register(CmdRecord, command.Handler{Apply: p.applyRecord, Keys: command.ArgKey(ActivityColl, "activityId")})
	r.Register(CmdStock, command.Handler{Apply: p.applyStock, Keys: command.ArgKey(ItemColl, "itemId")})
	r.Register(CmdRedeem, command.Handler{Apply: p.applyRedeem, Keys: func(c *command.Command) []command.Key {
		k := command.ArgKey(LedgerColl, "redemptionId")(c)
		k[0].ID = "red-" + k[0].ID
		return k
	}})
}

// manages: staff of the community (its dispatcher, a supervisor or leader above), an
// admin, or the server.
func manages(a org.Actor, community string) bool {
	return a.System || (a.Has(org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader, org.RoleAdmin) && a.Sees(community))
}

func community(f fault.Fields, code string) {
	if l, err := org.LevelOf(code); err != nil || l != org.Community {
		f.Add("communityId", "a community code")
	}
}

// RegisterArgs are the arguments of volunteer.register.
type RegisterArgs struct {
	VolunteerID string   `json:"volunteerId"`
	CommunityID string   `json:"communityId"`
	Name        string   `json:"name"`
	TeamIDs     []string `json:"teamIds"`
}

func (p *Points) applyRegister(tx *command.Tx, c *command.Command) error {
	var a RegisterArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match volunteer.register")
	}
	f := fault.Fields{}
	if !command.ValidToken(a.VolunteerID) {
		f.Add("volunteerId", "1 to 128 of a-z A-Z 0-9 - _")
	}
	community(f, a.CommunityID)
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Name)); n == 0 || n > 50 {
		f.Add("name", "1 to 50 characters")
	}
	if len(a.TeamIDs) > 20 {
		f.Add("teamIds", "at most 20")
	}
	if err := f.Err("invalid_args", "invalid volunteer"); err != nil {
		return err
	}
	if !manages(c.Actor, a.CommunityID) {
		return fault.New(fault.Forbidden, "forbidden", "volunteers are registered by the community's staff")
	}
	var old Volunteer
	if found, err := tx.Get(VolunteerColl, a.VolunteerID, &old); err != nil {
		return err
	} else if found && c.Actor.System && old.CommunityID == a.CommunityID {
		return nil // a seed or import run again
	} else if found {
		return fault.New(fault.Conflict, "already_exists", "a volunteer with this id exists")
	}
	v := Volunteer{ID: a.VolunteerID, CommunityID: a.CommunityID, Name: strings.TrimSpace(a.Name), TeamIDs: a.TeamIDs, Version: 1}
	return tx.Put(command.Record{Coll: VolunteerColl, ID: v.ID, Version: 1, Path: org.PathSubject(v.CommunityID), Doc: v, Wire: v})
}

// ActivityRouter sends volunteer.recordActivity to the writer of the activity's
// community: the team's, or the caller's own.
type ActivityRouter struct{ DB *mongo.Database }

// Route returns the partition key of an activity.
func (rt ActivityRouter) Route(ctx context.Context, a org.Actor, _ string, args json.RawMessage) (string, error) {
	fallback := org.PartitionKey(a.UnitID)
	var x struct {
		TeamID string `json:"teamId"`
	}
	if json.Unmarshal(args, &x) != nil || !command.ValidToken(x.TeamID) {
		return fallback, nil
	}
	var t Team
	if err := rt.DB.Collection(TeamColl).FindOne(ctx, bson.D{{Key: "_id", Value: x.TeamID}}).Decode(&t); err != nil {
		return fallback, nil // unknown team: refused by the writer
	}
	return org.PartitionKey(t.CommunityID), nil
}

// TeamArgs are the arguments of volunteer.createTeam.
type TeamArgs struct {
	TeamID      string   `json:"teamId"`
	CommunityID string   `json:"communityId"`
	Name        string   `json:"name"`
	Services    []string `json:"services"`
}

// applyCreateTeam makes a volunteer team of a community (its staff).
func (p *Points) applyCreateTeam(tx *command.Tx, c *command.Command) error {
	var a TeamArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match volunteer.createTeam")
	}
	f := fault.Fields{}
	if !command.ValidToken(a.TeamID) {
		f.Add("teamId", "1 to 128 of a-z A-Z 0-9 - _")
	}
	community(f, a.CommunityID)
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Name)); n == 0 || n > 100 {
		f.Add("name", "1 to 100 characters")
	}
	if len(a.Services) > 20 {
		f.Add("services", "at most 20")
	}
	for _, sv := range a.Services {
		if n := utf8.RuneCountInString(sv); n == 0 || n > 50 {
			f.Add("services", "each 1 to 50 characters")
		}
	}
	if err := f.Err("invalid_args", "invalid team"); err != nil {
		return err
	}
	if !manages(c.Actor, a.CommunityID) {
		return fault.New(fault.Forbidden, "forbidden", "teams are made by the community's staff")
	}
	var old Team
	if found, err := tx.Get(TeamColl, a.TeamID, &old); err != nil {
		return err
	} else if found {
		return fault.New(fault.Conflict, "already_exists", "a team with this id exists")
	}
	t := Team{ID: a.TeamID, CommunityID: a.CommunityID, Name: strings.TrimSpace(a.Name), Services: a.Services, Members: []string{}, Version: 1}
	if t.Services == nil {
		t.Services = []string{}
	}
	return tx.Put(command.Record{Coll: TeamColl, ID: t.ID, Version: 1, Path: org.PathSubject(t.CommunityID), Doc: t, Wire: t})
}

// RecordArgs are the arguments of volunteer.recordActivity (schemas/openapi.yaml).
type RecordArgs struct {
	ActivityID   string        `json:"activityId"`
	TeamID       string        `json:"teamId"`
	Title        string        `json:"title"`
	Kind         string        `json:"kind"`
	StartedAt    time.Time     `json:"startedAt"`
	EndedAt      time.Time     `json:"endedAt"`
	Participants []Participant `json:"participants"`
	Note         string        `json:"note"`
	Photos       []string      `json:"photos"`
	Served       int           `json:"served"`
}

// Participant is a volunteer's part in an activity.
type Participant struct {
	VolunteerID string  `json:"volunteerId" bson:"volunteerId"`
	Hours       float64 `json:"hours" bson:"hours"`
	Points      int     `json:"points" bson:"points"`
}

// applyRecord records a service activity, made on a phone (offline if need be), and
// credits each participant's points.
func (p *Points) applyRecord(tx *command.Tx, c *command.Command) error {
	var a RecordArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match volunteer.recordActivity")
	}
	now := tx.Now()
	f := fault.Fields{}
	if !command.ValidToken(a.ActivityID) {
		f.Add("activityId", "a UUID made on the handset")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Title)); n == 0 || n > 200 {
		f.Add("title", "1 to 200 characters")
	}
	if len(a.Kind) > 50 {
		f.Add("kind", "at most 50 characters")
	}
	if a.StartedAt.IsZero() || a.EndedAt.IsZero() || !a.EndedAt.After(a.StartedAt) || a.EndedAt.Sub(a.StartedAt) > 24*time.Hour {
		f.Add("endedAt", "after startedAt, within 24 hours")
	} else if a.EndedAt.After(now.Add(10*time.Minute)) || a.StartedAt.Before(now.AddDate(-1, 0, 0)) {
		f.Add("startedAt", "within the last year, not in the future")
	}
	span := a.EndedAt.Sub(a.StartedAt).Hours()
	if len(a.Participants) == 0 || len(a.Participants) > 200 {
		f.Add("participants", "1 to 200")
	}
	seen := map[string]bool{}
	for i, pt := range a.Participants {
		if !command.ValidToken(pt.VolunteerID) || seen[pt.VolunteerID] {
			f.Add(fmt.Sprintf("participants[%d].volunteerId", i), "a volunteer id, once")
		}
		seen[pt.VolunteerID] = true
		if math.IsNaN(pt.Hours) || pt.Hours <= 0 || pt.Hours > span+1e-9 {
			f.Add(fmt.Sprintf("participants[%d].hours", i), "more than 0, at most the activity's length")
		}
	}
	if utf8.RuneCountInString(a.Note) > 2000 || a.Served < 0 || a.Served > 100000 {
		f.Add("note", "at most 2000 characters; served 0..100000")
	}
	attachment.CheckPhotos(f, "photos", a.Photos)
	if err := f.Err("invalid_args", "invalid activity"); err != nil {
		return err
	}
	comm := org.CommunityOf(c.Actor.UnitID)
	if a.TeamID != "" {
		var t Team
		found, err := tx.Get(TeamColl, a.TeamID, &t)
		if err != nil {
			return err
		}
		if !found || !(c.Actor.Sees(t.CommunityID) || comm == t.CommunityID) {
			return fault.New(fault.Invalid, "invalid_args", "teamId: a team of the caller's community")
		}
		comm = t.CommunityID
	}
	if comm == "" || !(c.Actor.IsGridWorker() || manages(c.Actor, comm)) {
		return fault.New(fault.Forbidden, "forbidden", "activities are recorded by the community's grid workers and staff")
	}
	if !c.Actor.System && c.Key != "" && c.Key != org.PartitionKey(comm) {
		// Only the community's writer changes its balances (ActivityRouter sends it there).
		return fault.New(fault.Invalid, "invalid_args", "teamId: the activity must be sent to its community")
	}
	var old Activity
	if found, err := tx.Get(ActivityColl, a.ActivityID, &old); err != nil {
		return err
	} else if found {
		return fault.New(fault.Conflict, "already_exists", "an activity with this id exists")
	}
	path := org.PathSubject(comm)
	act := Activity{ID: a.ActivityID, TeamID: a.TeamID, CommunityID: comm, Title: strings.TrimSpace(a.Title), At: a.StartedAt.UTC(),
		Hours: span, Volunteers: len(a.Participants), Served: a.Served, Kind: a.Kind, EndedAt: a.EndedAt.UTC(),
		Note: strings.TrimSpace(a.Note), Photos: a.Photos, By: c.Actor.UserID, Version: 1}
	vols := make([]Volunteer, len(a.Participants))
	for i, pt := range a.Participants {
		found, err := tx.Get(VolunteerColl, pt.VolunteerID, &vols[i])
		if err != nil {
			return err
		}
		if !found || vols[i].CommunityID != comm {
			return fault.New(fault.Invalid, "invalid_args", "participants: "+pt.VolunteerID+" is not a volunteer of this community")
		}
	}
	rules := p.Rules()
	for i, pt := range a.Participants {
		v := &vols[i]
		pts := rules.Points(a.Kind, pt.Hours)
		act.Participants = append(act.Participants, Participant{VolunteerID: v.ID, Hours: pt.Hours, Points: pts})
		v.Balance += pts
		v.Earned += pts
		v.Hours += pt.Hours
		v.Version++
		e := Entry{ID: "act-" + a.ActivityID + "-" + v.ID, VolunteerID: v.ID, CommunityID: comm, Delta: pts, BalanceAfter: v.Balance,
			Reason: "activity", ActivityID: a.ActivityID, Hours: pt.Hours, By: c.Actor.UserID, At: now, Version: 1}
		if err := tx.Put(command.Record{Coll: LedgerColl, ID: e.ID, Version: 1, Path: path, Doc: e, Wire: e}); err != nil {
			return err
		}
		if err := tx.Put(command.Record{Coll: VolunteerColl, ID: v.ID, Version: v.Version, Path: path, Doc: *v, Wire: *v}); err != nil {
			return err
		}
	}
	for _, ph := range a.Photos {
		tx.Reference(ph, act.ID, comm)
	}
	return tx.Put(command.Record{Coll: ActivityColl, ID: act.ID, Version: 1, Path: path, Doc: act, Wire: act})
}

// StockArgs are the arguments of supermarket.stock: an article and how many are on
// the shelf.
type StockArgs struct {
	ItemID      string `json:"itemId"`
	CommunityID string `json:"communityId"`
	Name        string `json:"name"`
	Points      int    `json:"points"`
	Stock       int    `json:"stock"`
}

func (p *Points) applyStock(tx *command.Tx, c *command.Command) error {
	var a StockArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match supermarket.stock")
	}
	f := fault.Fields{}
	if !command.ValidToken(a.ItemID) {
		f.Add("itemId", "1 to 128 of a-z A-Z 0-9 - _")
	}
	community(f, a.CommunityID)
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Name)); n == 0 || n > 100 {
		f.Add("name", "1 to 100 characters")
	}
	if a.Points < 1 || a.Points > 100000 {
		f.Add("points", "1 to 100000")
	}
	if a.Stock < 0 || a.Stock > 1000000 {
		f.Add("stock", "0 to 1000000")
	}
	if err := f.Err("invalid_args", "invalid article"); err != nil {
		return err
	}
	if !manages(c.Actor, a.CommunityID) {
		return fault.New(fault.Forbidden, "forbidden", "the supermarket is kept by the community's staff")
	}
	var it Item
	found, err := tx.Get(ItemColl, a.ItemID, &it)
	if err != nil {
		return err
	}
	if found && it.CommunityID != a.CommunityID {
		return fault.New(fault.Conflict, "already_exists", "an article with this id belongs to another community")
	}
	it = Item{ID: a.ItemID, CommunityID: a.CommunityID, Name: strings.TrimSpace(a.Name), Points: a.Points, Stock: a.Stock, Version: it.Version + 1}
	return tx.Put(command.Record{Coll: ItemColl, ID: it.ID, Version: it.Version, Path: org.PathSubject(it.CommunityID), Doc: it, Wire: it})
}

// RedeemArgs are the arguments of supermarket.redeem.
type RedeemArgs struct {
	RedemptionID string `json:"redemptionId"`
	VolunteerID  string `json:"volunteerId"`
	ItemID       string `json:"itemId"`
	Quantity     int    `json:"quantity"`
}

// Redeemed is the outcome of a redemption.
type Redeemed struct {
	Balance int `json:"balance"`
	Stock   int `json:"stock"`
}

// applyRedeem spends points on articles: only if the balance covers them and the
// stock holds them. The partition's single writer applies redemptions one at a time,
// so concurrent ones never overdraw.
func (p *Points) applyRedeem(tx *command.Tx, c *command.Command) error {
	var a RedeemArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match supermarket.redeem")
	}
	f := fault.Fields{}
	if !command.ValidToken(a.RedemptionID) {
		f.Add("redemptionId", "1 to 128 of a-z A-Z 0-9 - _ (made by the caller: a retry is not a second redemption)")
	}
	if !command.ValidToken(a.VolunteerID) {
		f.Add("volunteerId", "a volunteer id")
	}
	if !command.ValidToken(a.ItemID) {
		f.Add("itemId", "an article id")
	}
	if a.Quantity < 1 || a.Quantity > 100 {
		f.Add("quantity", "1 to 100")
	}
	if err := f.Err("invalid_args", "invalid redemption"); err != nil {
		return err
	}
	var e Entry
	if found, err := tx.Get(LedgerColl, "red-"+a.RedemptionID, &e); err != nil {
		return err
	} else if found {
		return fault.New(fault.Conflict, "already_exists", "this redemption was made")
	}
	var v Volunteer
	var it Item
	foundV, err := tx.Get(VolunteerColl, a.VolunteerID, &v)
	if err != nil {
		return err
	}
	foundI, err := tx.Get(ItemColl, a.ItemID, &it)
	if err != nil {
		return err
	}
	if !foundV || !foundI || !(c.Actor.System || c.Actor.Sees(v.CommunityID) || org.CommunityOf(c.Actor.UnitID) == v.CommunityID) {
		return fault.New(fault.NotFound, "not_found", "no such volunteer or article")
	}
	if it.CommunityID != v.CommunityID {
		return fault.New(fault.Unprocessable, "other_community", "the article is in another community's supermarket")
	}
	if !manages(c.Actor, v.CommunityID) && !c.Actor.IsGridWorker() {
		return fault.New(fault.Forbidden, "forbidden", "redemptions are made by the community's staff and grid workers")
	}
	cost := it.Points * a.Quantity
	if it.Stock < a.Quantity {
		return fault.New(fault.Conflict, "out_of_stock", fmt.Sprintf("%d in stock", it.Stock))
	}
	if v.Balance < cost {
		return fault.New(fault.Conflict, "insufficient_points", fmt.Sprintf("the balance is %d points; %d needed", v.Balance, cost))
	}
	now := tx.Now()
	v.Balance -= cost
	v.Version++
	it.Stock -= a.Quantity
	it.Version++
	path := org.PathSubject(v.CommunityID)
	e = Entry{ID: "red-" + a.RedemptionID, VolunteerID: v.ID, CommunityID: v.CommunityID, Delta: -cost, BalanceAfter: v.Balance,
		Reason: "redemption", RedemptionID: a.RedemptionID, ItemID: it.ID, Quantity: a.Quantity, By: c.Actor.UserID, At: now, Version: 1}
	for _, r := range []command.Record{
		{Coll: LedgerColl, ID: e.ID, Version: 1, Path: path, Doc: e, Wire: e},
		{Coll: VolunteerColl, ID: v.ID, Version: v.Version, Path: path, Doc: v, Wire: v},
		{Coll: ItemColl, ID: it.ID, Version: it.Version, Path: path, Doc: it, Wire: it},
	} {
		if err := tx.Put(r); err != nil {
			return err
		}
	}
	return nil
}

// Volunteers lists a community's volunteers, by name or (leaderboard) most points
// earned first.
func (p *Points) Volunteers(ctx context.Context, a org.Actor, comm string, leaderboard bool) ([]Volunteer, error) {
	if err := readable(a, &comm); err != nil {
		return nil, err
	}
	var out []Volunteer
	if err := find(ctx, p.DB.Collection(VolunteerColl), bson.D{{Key: "communityId", Value: comm}}, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if leaderboard && out[i].Earned != out[j].Earned {
			return out[i].Earned > out[j].Earned
		}
		return out[i].Name < out[j].Name || (out[i].Name == out[j].Name && out[i].ID < out[j].ID)
	})
	return out, nil
}

// Ledger lists a volunteer's ledger entries, oldest first.
func (p *Points) Ledger(ctx context.Context, a org.Actor, volunteerID string) ([]Entry, error) {
	var v Volunteer
	if err := p.DB.Collection(VolunteerColl).FindOne(ctx, bson.D{{Key: "_id", Value: volunteerID}}).Decode(&v); err != nil {
		return nil, fault.New(fault.NotFound, "not_found", "no such volunteer")
	}
	comm := v.CommunityID
	if err := readable(a, &comm); err != nil {
		return nil, fault.New(fault.NotFound, "not_found", "no such volunteer")
	}
	var out []Entry
	if err := find(ctx, p.DB.Collection(LedgerColl), bson.D{{Key: "volunteerId", Value: volunteerID}}, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].At.Before(out[j].At) || (out[i].At.Equal(out[j].At) && out[i].ID < out[j].ID)
	})
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, nil
}

// Items lists a community's supermarket.
func (p *Points) Items(ctx context.Context, a org.Actor, comm string) ([]Item, error) {
	if err := readable(a, &comm); err != nil {
		return nil, err
	}
	var out []Item
	if err := find(ctx, p.DB.Collection(ItemColl), bson.D{{Key: "communityId", Value: comm}}, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// readable checks the caller may read a community's points (its staff and workers,
// or above); "" is the caller's own community.
func readable(a org.Actor, comm *string) error {
	if *comm == "" {
		*comm = org.CommunityOf(a.UnitID)
	}
	if l, err := org.LevelOf(*comm); err != nil || l != org.Community {
		return fault.New(fault.Invalid, "invalid_request", "community: a community code")
	}
	if !a.Sees(*comm) && org.CommunityOf(a.UnitID) != *comm {
		return fault.New(fault.Forbidden, "out_of_scope", "the community is outside the caller's area")
	}
	if !a.IsGridWorker() && !a.Has(org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader, org.RoleAdmin, org.RoleHandler) {
		return fault.New(fault.Forbidden, "forbidden", "this role does not read love points")
	}
	return nil
}

func find[T any](ctx context.Context, c *mongo.Collection, filter bson.D, out *[]T) error {
	cur, err := c.Find(ctx, filter, options.Find().SetLimit(10000))
	if err != nil {
		return fault.Wrap(err, "read "+c.Name())
	}
	*out = []T{}
	if err := cur.All(ctx, out); err != nil {
		return fault.Wrap(err, "read "+c.Name())
	}
	return nil
}

// Submit sends a points command made on the web (register, stock, redeem) to its
// community's writer and waits for the outcome; id, when given, makes a retry the
// same command (a redemption's id), else each call is a command of its own.
func (p *Points) Submit(ctx context.Context, a org.Actor, name, id string, args any) error {
	var comm string
	switch x := args.(type) {
	case RegisterArgs:
		comm = x.CommunityID
	case TeamArgs:
		comm = x.CommunityID
	case StockArgs:
		comm = x.CommunityID
	case RedeemArgs:
		if !command.ValidToken(x.RedemptionID) {
			return fault.New(fault.Invalid, "invalid_args", "redemptionId: 1 to 128 of a-z A-Z 0-9 - _")
		}
		var v Volunteer
		if !command.ValidToken(x.VolunteerID) || p.DB.Collection(VolunteerColl).FindOne(ctx, bson.D{{Key: "_id", Value: x.VolunteerID}}).Decode(&v) != nil {
			return fault.New(fault.NotFound, "not_found", "no such volunteer or article")
		}
		comm = v.CommunityID
	}
	if l, err := org.LevelOf(comm); err != nil || l != org.Community {
		return fault.New(fault.Invalid, "invalid_args", "communityId: a community code")
	}
	if id != "" {
		id = strings.ReplaceAll(name, ".", "-") + "-" + id
	}
	o, err := p.Bus.Do(ctx, id, name, org.PartitionKey(comm), a, args, 30*time.Second)
	if err != nil {
		return err
	}
	return o.Err()
}

// ExportLedger writes a community's points ledger as CSV, oldest first.
func (p *Points) ExportLedger(ctx context.Context, a org.Actor, comm string) ([]byte, error) {
	if err := readable(a, &comm); err != nil {
		return nil, err
	}
	var es []Entry
	if err := find(ctx, p.DB.Collection(LedgerColl), bson.D{{Key: "communityId", Value: comm}}, &es); err != nil {
		return nil, err
	}
	sort.Slice(es, func(i, j int) bool {
		return es[i].At.Before(es[j].At) || (es[i].At.Equal(es[j].At) && es[i].ID < es[j].ID)
	})
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"entry", "volunteerId", "communityId", "delta", "balanceAfter", "reason", "activityId", "redemptionId", "itemId", "quantity", "hours", "by", "at"})
	for _, e := range es {
		_ = w.Write([]string{e.ID, e.VolunteerID, e.CommunityID, strconv.Itoa(e.Delta), strconv.Itoa(e.BalanceAfter), e.Reason,
			e.ActivityID, e.RedemptionID, e.ItemID, strconv.Itoa(e.Quantity), strconv.FormatFloat(e.Hours, 'f', -1, 64), e.By, e.At.UTC().Format(time.RFC3339)})
	}
	w.Flush()
	return b.Bytes(), w.Error()
}
