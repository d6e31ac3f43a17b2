// Package fieldsync implements the handset contract of SYNC-PROTOCOL.md: pushes of
// per-device mutation queues (in order, at most once, with stored outcomes) that enter
// the command path, and pulls of the change feed by scope with an opaque cursor that
// never skips a change.
package fieldsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// SchemaVersion is the protocol version this server serves.
const SchemaVersion = 1

// MutationNames are the v1 mutation names of SYNC-PROTOCOL.md. A name outside this
// list is answered 422; a listed one this server cannot apply yet is rejected on its
// own (final), so it never blocks the queue behind it.
var MutationNames = []string{
	"incident.report", "incident.accept", "incident.assign", "incident.start", "incident.resolve",
	"incident.verify", "incident.reopen", "incident.escalate", "incident.refuse", "incident.requestDelay",
	"incident.approveDelay", "incident.merge", "incident.comment", "incident.rate", "complaint.file",
	"household.create", "household.update", "visit.log", "volunteer.recordActivity", "patrol.checkIn",
	// Added to v1 (additive: a client that never sends them is unaffected): the moves
	// between levels that DESIGN §3 names, 交办 and 督办.
	"incident.handDown", "incident.takeOver",
	// Added to v1: the discipline officer answers a complaint.
	"complaint.answer",
}

// Router decides a mutation's partition key.
type Router interface {
	Route(ctx context.Context, a org.Actor, name string, args json.RawMessage) (string, error)
}

// Directory tells a user's home unit over time: scopes follow the current one,
// queued mutations the one their author had when making them.
type Directory interface {
	UnitsOf(ctx context.Context, login string) (func(time.Time) string, error)
}

// Options configures the service.
type Options struct {
	PushWait time.Duration // how long a push waits for outcomes
	// MaxOffline bounds how far back a mutation's clientTime is believed when judging
	// it by the unit its author had then.
	MaxOffline   time.Duration
	MaxMutations int
	MaxArgs      int // bytes of one mutation's args
	PullLimit    int
	Horizon      time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Service serves pushes and pulls.
type Service struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	db      *mongo.Database
	names   command.Names
	routers map[string]Router
	dir     Directory
	clients jetstream.KeyValue
	res     jetstream.Stream
	opt     Options
}

// New returns the sync service. routers maps mutation names to the domain package that
// routes them; names without one go to the caller's own partition.
func New(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, db *mongo.Database, names command.Names, routers map[string]Router, dir Directory, opt Options) (*Service, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.MaxArgs == 0 {
		opt.MaxArgs = 64 << 10
	}
	if opt.MaxOffline == 0 {
		opt.MaxOffline = 7 * 24 * time.Hour
	}
	kv, err := js.KeyValue(ctx, names.ClientsBucket())
	if err != nil {
		return nil, fmt.Errorf("fieldsync: %w", err)
	}
	res, err := js.Stream(ctx, names.ResStream())
	if err != nil {
		return nil, fmt.Errorf("fieldsync: %w", err)
	}
	return &Service{nc: nc, js: js, db: db, names: names, routers: routers, dir: dir, clients: kv, res: res, opt: opt}, nil
}

// PushRequest is the body of POST /v1/sync/push.
type PushRequest struct {
	ClientID      string     `json:"clientId"`
	SchemaVersion int        `json:"schemaVersion"`
	Mutations     []Mutation `json:"mutations"`
}

// Mutation is one queued change from a handset.
type Mutation struct {
	ID         int64           `json:"id"`
	Name       string          `json:"name"`
	Args       json.RawMessage `json:"args"`
	ClientTime *time.Time      `json:"clientTime"`
}

// Result is the outcome of one mutation as a push or pull reports it.
type Result struct {
	ID      int64               `json:"id"`
	Status  string              `json:"status"` // applied | rejected | pending
	Error   *command.ErrorBody  `json:"error,omitempty"`
	Changes []command.ChangeRef `json:"changes,omitempty"`
}

// Pending is the status of a durably accepted mutation not yet applied.
const Pending = "pending"

// PushResponse is the answer to a push.
type PushResponse struct {
	LastMutationID int64    `json:"lastMutationId"`
	Results        []Result `json:"results"`
}

// clientState is a handset queue's state, in the clients bucket.
type clientState struct {
	Accepted int64  `json:"accepted"` // highest mutation id durably in the command stream
	Done     int64  `json:"done"`     // highest id with every id up to it final
	User     string `json:"user,omitempty"`
}

func (s *Service) validatePush(a org.Actor, r *PushRequest) error {
	f := fault.Fields{}
	if !auth.ValidDeviceID(r.ClientID) {
		f.Add("clientId", "required: the deviceId used at login")
	}
	if len(r.Mutations) > s.opt.MaxMutations {
		return fault.New(fault.TooLarge, "too_many_mutations", "at most "+strconv.Itoa(s.opt.MaxMutations)+" mutations in one push")
	}
	for i, m := range r.Mutations {
		p := "mutations[" + strconv.Itoa(i) + "]"
		if m.ID < 1 {
			f.Add(p+".id", "a positive integer")
		} else if i > 0 && m.ID != r.Mutations[i-1].ID+1 {
			f.Add(p+".id", "ids in a push must be consecutive")
		}
		if m.Name == "" {
			f.Add(p+".name", "required")
		}
		if a := bytes.TrimSpace(m.Args); len(a) == 0 || a[0] != '{' {
			f.Add(p+".args", "required: a JSON object")
		} else if len(m.Args) > s.opt.MaxArgs {
			return fault.New(fault.TooLarge, "args_too_large", p+".args is over "+strconv.Itoa(s.opt.MaxArgs)+" bytes")
		}
	}
	if err := f.Err("invalid_request", "the push is malformed; nothing was stored"); err != nil {
		return err
	}
	if r.SchemaVersion != SchemaVersion {
		return fault.New(fault.Unprocessable, "unsupported_schema", fmt.Sprintf("schemaVersion %d is not served; this server serves %d", r.SchemaVersion, SchemaVersion))
	}
	for i, m := range r.Mutations {
		if !slices.Contains(MutationNames, m.Name) {
			return fault.New(fault.Unprocessable, "unknown_mutation", fmt.Sprintf("mutations[%d]: unknown mutation %q; nothing was stored", i, m.Name))
		}
	}
	if r.ClientID != a.DeviceID {
		return fault.New(fault.Forbidden, "device_mismatch", "clientId must be the deviceId this token was issued to")
	}
	return nil
}

// Push accepts a batch of a handset's mutations. Those already seen get their stored
// outcome; new ones enter the command stream in id order; the push then waits up to
// PushWait for outcomes and answers pending for the rest.
func (s *Service) Push(ctx context.Context, a org.Actor, r *PushRequest) (*PushResponse, error) {
	if err := s.validatePush(a, r); err != nil {
		return nil, err
	}
	st, _, err := s.state(ctx, r.ClientID)
	if err != nil {
		return nil, err
	}
	if len(r.Mutations) == 0 {
		done, err := s.done(ctx, r.ClientID, nil)
		return &PushResponse{LastMutationID: done, Results: []Result{}}, err
	}
	if first := r.Mutations[0].ID; first > st.Accepted+1 {
		return nil, &fault.Error{Kind: fault.Conflict, Code: "mutation_gap",
			Message: fmt.Sprintf("expected mutation %d next; resend from there", st.Accepted+1),
			Extra:   map[string]any{"lastMutationId": st.Accepted}}
	}
	// Subscribe to outcomes before publishing so none is missed.
	outc := make(chan *nats.Msg, len(r.Mutations)+8)
	sub, err := s.nc.ChanSubscribe(s.names.Prefix+".res."+r.ClientID+".*", outc)
	if err != nil {
		return nil, fault.Wrap(err, "subscribe outcomes")
	}
	defer sub.Unsubscribe()

	results := make([]Result, len(r.Mutations))
	index := map[int64]int{}
	var futs []jetstream.PubAckFuture
	now := s.opt.Now().UTC()
	unitAt, err := s.unitsOf(ctx, a)
	if err != nil {
		return nil, err
	}
	author := a
	for i, m := range r.Mutations {
		// Judge the mutation by the unit its author had when making it (a worker
		// moved to another grid keeps the rights it had for what it queued before).
		// The handset's clock is believed only within the longest offline spell:
		// an older clientTime cannot keep a unit its author left long ago.
		made := now
		if m.ClientTime != nil && m.ClientTime.Before(now) {
			made = *m.ClientTime
		}
		if oldest := now.Add(-s.opt.MaxOffline); made.Before(oldest) {
			made = oldest
		}
		a := author
		a.UnitID = unitAt(made)
		index[m.ID] = i
		results[i] = Result{ID: m.ID, Status: Pending}
		if m.ID <= st.Accepted {
			if o, err := s.outcome(ctx, r.ClientID, m.ID); err != nil {
				return nil, err
			} else if o != nil {
				results[i] = *o
			}
			continue
		}
		key := org.PartitionKey(a.UnitID)
		if rt := s.routers[m.Name]; rt != nil {
			if key, err = rt.Route(ctx, a, m.Name, m.Args); err != nil {
				return nil, err
			}
		}
		c := command.Command{ID: command.ClientCommandID(r.ClientID, m.ID), Name: m.Name, Args: m.Args, Actor: a,
			ClientID: r.ClientID, MutationID: m.ID, IssuedAt: now, Key: key}
		if m.ClientTime != nil {
			c.ClientTime = *m.ClientTime
		}
		data, _ := json.Marshal(c)
		msg := nats.NewMsg(s.names.CmdSubject(key))
		msg.Data = data
		f, err := s.js.PublishMsgAsync(msg, jetstream.WithMsgID(c.ID))
		if err != nil {
			return nil, fault.Wrap(err, "publish command")
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return nil, fault.Wrap(err, "publish command")
		case <-ctx.Done():
			return nil, fault.Wrap(ctx.Err(), "publish command")
		}
	}
	if last := r.Mutations[len(r.Mutations)-1].ID; last > st.Accepted {
		if err := s.raiseAccepted(ctx, r.ClientID, a.UserID, last); err != nil {
			return nil, err
		}
	}
	// Wait for the outcomes still pending.
	waiting := 0
	for _, res := range results {
		if res.Status == Pending {
			waiting++
		}
	}
	timer := time.NewTimer(s.opt.PushWait)
	defer timer.Stop()
	for waiting > 0 {
		select {
		case m := <-outc:
			var o command.Outcome
			if json.Unmarshal(m.Data, &o) != nil {
				continue
			}
			if i, ok := index[o.MutationID]; ok && results[i].Status == Pending {
				results[i] = resultOf(o)
				waiting--
			}
		case <-timer.C:
			waiting = 0
		case <-ctx.Done():
			waiting = 0
		}
	}
	known := map[int64]bool{}
	for _, res := range results {
		if res.Status != Pending {
			known[res.ID] = true
		}
	}
	done, err := s.done(ctx, r.ClientID, known)
	if err != nil {
		return nil, err
	}
	return &PushResponse{LastMutationID: done, Results: results}, nil
}

func resultOf(o command.Outcome) Result {
	return Result{ID: o.MutationID, Status: o.Status, Error: o.Error, Changes: o.Changes}
}

// outcome returns a mutation's stored outcome, or nil while it is pending.
func (s *Service) outcome(ctx context.Context, clientID string, id int64) (*Result, error) {
	cmdID := command.ClientCommandID(clientID, id)
	m, err := s.res.GetLastMsgForSubject(ctx, s.names.ResSubject(cmdID))
	if err == nil {
		var o command.Outcome
		if json.Unmarshal(m.Data, &o) == nil {
			r := resultOf(o)
			return &r, nil
		}
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fault.Wrap(err, "read outcome")
	}
	// Older than the stream keeps: the database has it. A younger outcome missing from
	// the stream is not published yet (its changes may not be on the feed either), so
	// it still counts as pending.
	o, err := command.StoredOutcome(ctx, s.db, cmdID)
	if err != nil || o == nil || s.opt.Now().Sub(o.At) < s.opt.Horizon-time.Hour {
		return nil, err
	}
	r := resultOf(*o)
	return &r, nil
}

func (s *Service) state(ctx context.Context, clientID string) (clientState, uint64, error) {
	var st clientState
	e, err := s.clients.Get(ctx, clientID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, fault.Wrap(err, "read client state")
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return st, 0, fault.Wrap(err, "decode client state")
	}
	return st, e.Revision(), nil
}

// update changes a client's state with compare-and-set, retrying on races.
func (s *Service) update(ctx context.Context, clientID string, f func(*clientState) bool) error {
	for attempt := 0; attempt < 20; attempt++ {
		st, rev, err := s.state(ctx, clientID)
		if err != nil {
			return err
		}
		if !f(&st) {
			return nil
		}
		data, _ := json.Marshal(st)
		if rev == 0 {
			_, err = s.clients.Create(ctx, clientID, data)
		} else {
			_, err = s.clients.Update(ctx, clientID, data, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return fault.Wrap(err, "write client state")
		}
	}
	return fault.New(fault.Unavailable, "busy", "the device's queue is busy; retry")
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

func (s *Service) raiseAccepted(ctx context.Context, clientID, user string, id int64) error {
	return s.update(ctx, clientID, func(st *clientState) bool {
		if st.Accepted >= id {
			return false
		}
		st.Accepted, st.User = id, user
		return true
	})
}

// done advances and returns the highest mutation id up to which every mutation of the
// client is final. Outcomes are published after the changes they report, so every
// change of a mutation up to it is already on the change feed.
func (s *Service) done(ctx context.Context, clientID string, known map[int64]bool) (int64, error) {
	st, _, err := s.state(ctx, clientID)
	if err != nil {
		return 0, err
	}
	d := st.Done
	for d < st.Accepted {
		if !known[d+1] {
			o, err := s.outcome(ctx, clientID, d+1)
			if err != nil {
				return 0, err
			}
			if o == nil {
				break
			}
		}
		d++
	}
	if d > st.Done {
		if err := s.update(ctx, clientID, func(st *clientState) bool {
			if st.Done >= d {
				return false
			}
			st.Done = d
			return true
		}); err != nil {
			return 0, err
		}
	}
	return d, nil
}

// LastAccepted is the highest mutation id of the device durably accepted (0 for a new
// device).
func (s *Service) LastAccepted(ctx context.Context, deviceID string) (int64, error) {
	if !command.ValidToken(deviceID) {
		return 0, nil
	}
	st, _, err := s.state(ctx, deviceID)
	return st.Accepted, err
}

// unitsOf tells the actor's home unit over time; without a directory entry (the token
// outlived the user) the token's unit stands.
func (s *Service) unitsOf(ctx context.Context, a org.Actor) (func(time.Time) string, error) {
	if s.dir != nil {
		f, err := s.dir.UnitsOf(ctx, a.UserID)
		if err != nil {
			return nil, err
		}
		if f != nil {
			return f, nil
		}
	}
	return func(time.Time) string { return a.UnitID }, nil
}
