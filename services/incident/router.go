package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
)

// Routing decisions, as the incident.routed event carries them.
const (
	RoutedUp    = "up"    // passed to the parent unit: this level cannot resolve it
	RoutedQueue = "queue" // stays: waits in the owning unit's dispatcher queue
)

// RouteArgs are the arguments of incident.route.
type RouteArgs struct {
	IncidentID string `json:"incidentId"`
	// UnitID is the owner the router saw; a decision about an item that has moved
	// since is stale and changes nothing.
	UnitID string `json:"unitId"`
	// LikelyDuplicates are open items of the same category reported nearby in the
	// last day (see DupRadius), nearest first; the item is flagged with them.
	LikelyDuplicates []string `json:"likelyDuplicates,omitempty"`
	// After is the event the router acted on.
	After string `json:"after,omitempty"`
}

// Routed is the data of the incident.routed event: the router's decision.
type Routed struct {
	IncidentID string `json:"incidentId"`
	Decision   string `json:"decision"`
	From       string `json:"from"`   // owner before the decision
	UnitID     string `json:"unitId"` // owner after it
	Level      int    `json:"level"`
	Target     int    `json:"target"` // the level the capability matrix asks for
	Category   string `json:"category"`
	Urgent     bool   `json:"urgent"`
	// LikelyDuplicates flags the item for the dispatcher (see RouteArgs).
	LikelyDuplicates []string `json:"likelyDuplicates,omitempty"`
	// After is the event that brought the item to this decision (incident.reported,
	// incident.escalated or incident.routed).
	After string `json:"after,omitempty"`
}

// applyRoute decides, for a reported item, whether its owning level can resolve it
// (the capability matrix) or must pass it up one level; the router sends it for each
// new, escalated or passed-up item until the decision is to queue it.
func (s *Service) applyRoute(tx *command.Tx, c *command.Command) error {
	if !c.Actor.System {
		return fault.New(fault.Forbidden, "forbidden", "incident.route is for the router only")
	}
	var ra RouteArgs
	if err := json.Unmarshal(c.Args, &ra); err != nil || !validID(ra.IncidentID) {
		return fault.New(fault.Invalid, "invalid_args", "incidentId must be a UUIDv7")
	}
	inc, err := s.load(tx, c.Actor, ra.IncidentID)
	if err != nil {
		return err
	}
	if inc.Status != Reported || inc.UnitID != ra.UnitID {
		return nil // moved on since the router looked: nothing to decide
	}
	rewrite := false
	if len(ra.LikelyDuplicates) > 0 {
		dups := ra.LikelyDuplicates[:min(len(ra.LikelyDuplicates), 5)]
		for _, d := range dups {
			if !validID(d) {
				return fault.New(fault.Invalid, "invalid_args", "likelyDuplicates: incident ids")
			}
		}
		inc.LikelyDuplicateOf = dups
		rewrite = true
	}
	target := s.matrix.Load().Target(inc.Category, inc.Level)
	r := Routed{IncidentID: inc.ID, Decision: RoutedQueue, From: inc.UnitID, Level: inc.Level, Target: target,
		Category: inc.Category, Urgent: inc.Urgent, After: ra.After}
	if target > inc.Level {
		if err := escalate(inc); err != nil {
			return err
		}
		now := tx.Now()
		s.arrive(inc, now)
		r.Decision = RoutedUp
		inc.History = append(inc.History, HistoryEntry{At: now, By: c.Actor.UserID, Action: "route", From: Reported, To: Reported,
			Reason: fmt.Sprintf("category %s is handled from level %d: passed up from %s", inc.Category, target, r.From), Unit: inc.UnitID})
		rewrite = true
	}
	if rewrite {
		inc.UpdatedAt = tx.Now()
		inc.Version++
		if err := s.put(tx, inc, ""); err != nil {
			return err
		}
	}
	r.UnitID, r.Level = inc.UnitID, inc.Level
	r.LikelyDuplicates = inc.LikelyDuplicateOf
	return tx.Emit("incident.routed", org.PathSubject(inc.UnitID), r)
}

// Router is the JetStream consumer that routes items: for each reported, escalated
// or passed-up item it sends incident.route to the item's writer. The decision itself
// is taken there (applyRoute), against the item as it is.
type Router struct {
	JS    jetstream.JetStream
	Names command.Names
	Bus   *command.Bus
	Svc   *Service
	Log   *slog.Logger

	dups *dupIndex
}

// events that open or close an item for duplicate flagging.
var dupOpen, dupClose = "incident.reported", []string{"incident.closed", "incident.refused", "incident.merged"}

// Run consumes until ctx ends; it returns once the consumer is set up.
func (r *Router) Run(ctx context.Context) error {
	stream, err := r.JS.Stream(ctx, r.Names.EvtStream())
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := r.warm(ctx, stream); err != nil {
		return err
	}
	filters := []string{
		r.Names.EvtSubject("incident.reported", ">"),
		r.Names.EvtSubject("incident.escalated", ">"),
		r.Names.EvtSubject("incident.routed", ">"),
	}
	for _, typ := range dupClose {
		filters = append(filters, r.Names.EvtSubject(typ, ">"))
	}
	return command.Work(ctx, stream, "router", filters, r.Log, r.handle)
}

// queued publishes the decision to leave an item in its owner's queue.
func (r *Router) queued(ctx context.Context, ev *command.Event, inc *eventIncident, target int) error {
	data, _ := json.Marshal(Routed{IncidentID: inc.ID, Decision: RoutedQueue, From: inc.UnitID, UnitID: inc.UnitID,
		Level: inc.Level, Target: target, Category: inc.Category, Urgent: inc.Urgent, After: ev.Type})
	id := ev.ID + "#routed"
	out, _ := json.Marshal(command.Event{ID: id, Type: "incident.routed", Command: CmdRoute, Actor: org.SystemActor("router"),
		At: time.Now().UTC(), Data: data})
	_, err := r.JS.Publish(ctx, r.Names.EvtSubject("incident.routed", org.PathSubject(inc.UnitID)), out, jetstream.WithMsgID("evt:"+id))
	return err
}

// warm rebuilds the index of open reports of the last DupWindow from the events.
func (r *Router) warm(ctx context.Context, stream jetstream.Stream) error {
	r.dups = newDupIndex()
	filters := []string{r.Names.EvtSubject(dupOpen, ">")}
	for _, typ := range dupClose {
		filters = append(filters, r.Names.EvtSubject(typ, ">"))
	}
	start := time.Now().Add(-DupWindow)
	c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start})
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return fmt.Errorf("router: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var ev command.Event
			var inc eventIncident
			if json.Unmarshal(m.Data(), &ev) == nil && json.Unmarshal(ev.Data, &inc) == nil && inc.ID != "" {
				r.track(ev.Type, &inc)
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("router: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

// eventIncident is the part of an incident event the router reads (decoding only it
// keeps the router cheap beside the write path).
type eventIncident struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	Level     int       `json:"level"`
	UnitID    string    `json:"unitId"`
	Category  string    `json:"category"`
	Location  Point     `json:"location"`
	Urgent    bool      `json:"urgent"`
	CreatedAt time.Time `json:"createdAt"`
}

// track follows an event in the duplicate index.
func (r *Router) track(typ string, inc *eventIncident) {
	switch {
	case typ == dupOpen:
		r.dups.add(inc.ID, inc.Category, inc.Location, inc.CreatedAt)
	case slices.Contains(dupClose, typ):
		r.dups.remove(inc.ID)
	}
}

func (r *Router) handle(ctx context.Context, data []byte) error {
	var ev command.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		r.Log.Error("router: undecodable event dropped", "err", err)
		return nil
	}
	args := RouteArgs{After: ev.Type}
	if ev.Type == "incident.routed" {
		var rt Routed
		if json.Unmarshal(ev.Data, &rt) != nil || rt.Decision != RoutedUp {
			return nil
		}
		args = RouteArgs{IncidentID: rt.IncidentID, UnitID: rt.UnitID, After: ev.Type}
	} else {
		var inc eventIncident
		if json.Unmarshal(ev.Data, &inc) != nil || inc.ID == "" {
			return nil
		}
		if ev.Type == dupOpen {
			args.LikelyDuplicates = r.dups.near(inc.ID, inc.Category, inc.Location, inc.CreatedAt)
		}
		r.track(ev.Type, &inc)
		if slices.Contains(dupClose, ev.Type) || inc.Status != Reported {
			return nil
		}
		args.IncidentID, args.UnitID = inc.ID, inc.UnitID
		if target := r.Svc.matrix.Load().Target(inc.Category, inc.Level); target == inc.Level && len(args.LikelyDuplicates) == 0 {
			// Nothing to change: the item waits in its owner's queue. Say so without a
			// command, so a plain report costs its writer one command, not two.
			return r.queued(ctx, &ev, &inc, target)
		}
	}
	actor := org.SystemActor("router")
	raw, _ := json.Marshal(args)
	key, err := r.Svc.Route(ctx, actor, CmdRoute, raw)
	if err != nil {
		return err
	}
	// The event id makes the command id: a redelivered event is a duplicate command.
	_, err = r.Bus.Do(ctx, "route-"+ev.ID, CmdRoute, key, actor, args, 0)
	return err
}
