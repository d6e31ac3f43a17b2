package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	target := s.matrix.Load().Target(inc.Category, inc.Level)
	r := Routed{IncidentID: inc.ID, Decision: RoutedQueue, From: inc.UnitID, Level: inc.Level, Target: target,
		Category: inc.Category, Urgent: inc.Urgent}
	if target > inc.Level {
		if err := escalate(inc); err != nil {
			return err
		}
		now := tx.Now()
		s.arrive(inc, now)
		r.Decision = RoutedUp
		inc.History = append(inc.History, HistoryEntry{At: now, By: c.Actor.UserID, Action: "route", From: Reported, To: Reported,
			Reason: fmt.Sprintf("category %s is handled from level %d: passed up from %s", inc.Category, target, r.From), Unit: inc.UnitID})
		inc.UpdatedAt = now
		inc.Version++
		if err := s.put(tx, inc, ""); err != nil {
			return err
		}
	}
	r.UnitID, r.Level = inc.UnitID, inc.Level
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
}

// Run consumes until ctx ends; it returns once the consumer is set up.
func (r *Router) Run(ctx context.Context) error {
	stream, err := r.JS.Stream(ctx, r.Names.EvtStream())
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "router",
		FilterSubjects: []string{
			r.Names.EvtSubject("incident.reported", ">"),
			r.Names.EvtSubject("incident.escalated", ">"),
			r.Names.EvtSubject("incident.routed", ">"),
		},
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 1000,
	})
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := r.handle(ctx, m.Data()); err != nil {
			r.Log.Warn("router: will retry", "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
	}()
	return nil
}

func (r *Router) handle(ctx context.Context, data []byte) error {
	var ev command.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		r.Log.Error("router: undecodable event dropped", "err", err)
		return nil
	}
	args := RouteArgs{}
	switch ev.Type {
	case "incident.routed":
		var rt Routed
		if json.Unmarshal(ev.Data, &rt) != nil || rt.Decision != RoutedUp {
			return nil
		}
		args = RouteArgs{IncidentID: rt.IncidentID, UnitID: rt.UnitID}
	default:
		var inc Incident
		if json.Unmarshal(ev.Data, &inc) != nil || inc.Status != Reported {
			return nil
		}
		args = RouteArgs{IncidentID: inc.ID, UnitID: inc.UnitID}
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
