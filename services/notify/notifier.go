package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
)

// Directory finds the people a rule names.
type Directory interface {
	// Logins lists the active users whose home unit is one of units (nil: any) and
	// who hold one of roles.
	Logins(ctx context.Context, units []string, roles []string) ([]string, error)
}

// Notifier is the JetStream consumer that turns domain events into notifications: for
// each event it reads the rules, finds the people, and files one notification per
// person through the write path (notify.deliver). It is never in the request path; a
// crash re-reads the event and files the same notifications (same ids), once.
type Notifier struct {
	JS    jetstream.JetStream
	Names command.Names
	Bus   *command.Bus
	Dir   Directory
	// Category names a category code (the incident catalogue).
	Category func(code string) Text
	Log      *slog.Logger
}

// Run consumes until ctx ends; it returns once the consumer is set up.
func (n *Notifier) Run(ctx context.Context) error {
	stream, err := n.JS.Stream(ctx, n.Names.EvtStream())
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	var filters []string
	for _, e := range Events() {
		filters = append(filters, n.Names.EvtSubject(e, ">"))
	}
	return command.Work(ctx, stream, "notifier", filters, n.Log, n.handle)
}

var notifier = org.SystemActor("notifier")

func (n *Notifier) handle(ctx context.Context, data []byte) error {
	ns, err := n.Decide(ctx, data)
	if err != nil {
		return err
	}
	for _, x := range ns {
		if _, err := n.Bus.Do(ctx, "ntf-"+x.ID, CmdDeliver, key(x.UserID), notifier, x, 0); err != nil {
			return err
		}
	}
	return nil
}

// Decide returns the notifications an event makes.
func (n *Notifier) Decide(ctx context.Context, data []byte) ([]Notification, error) {
	var ev command.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		n.Log.Error("notifier: undecodable event dropped", "err", err)
		return nil, nil
	}
	var s subject
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		n.Log.Error("notifier: undecodable event data dropped", "event", ev.ID, "type", ev.Type, "err", err)
		return nil, nil
	}
	if s.Incident != nil {
		s = *s.Incident
	}
	var out []Notification
	for _, r := range rules {
		if r.event != ev.Type || (r.when != nil && !r.when(&s)) {
			continue
		}
		people, err := n.people(ctx, r.to, &s)
		if err != nil {
			return nil, err
		}
		var cat Text
		if n.Category != nil && s.Category != "" {
			cat = n.Category(s.Category)
		}
		for _, login := range people {
			if login == "" || login == ev.Actor.UserID {
				continue // whoever made the change knows it
			}
			x := Notification{ID: idOf(ev.ID, login, r.kind), UserID: login, Kind: r.kind, Title: r.title,
				Body: r.body(&s, cat), Event: ev.ID, At: ev.At.UTC()}
			if r.urgent != nil {
				x.Urgent = r.urgent(&s)
			}
			if ev.Type == "complaint.filed" {
				x.ComplaintID = s.ID
			} else if s.Category != "" || s.IncidentID != "" {
				x.IncidentID = or(s.IncidentID, s.ID)
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// people resolves a rule's audiences for one event, each person once.
func (n *Notifier) people(ctx context.Context, to []who, s *subject) ([]string, error) {
	var out []string
	add := func(logins ...string) {
		for _, l := range logins {
			if l != "" && !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	find := func(units []string, roles ...string) error {
		if len(units) == 0 {
			return nil
		}
		ls, err := n.Dir.Logins(ctx, units, roles)
		add(ls...)
		return err
	}
	// desk is who works a unit's queue: its dispatchers, or where it has none (a
	// street or district office) its supervisors and leaders.
	desk := func(unit string) error {
		ls, err := n.Dir.Logins(ctx, []string{unit}, []string{org.RoleDispatcher})
		if err == nil && len(ls) == 0 {
			ls, err = n.Dir.Logins(ctx, []string{unit}, []string{org.RoleSupervisor, org.RoleLeader})
		}
		add(ls...)
		return err
	}
	owner := or(s.UnitID, s.Unit)
	for _, w := range to {
		var err error
		switch w {
		case assignee:
			add(s.AssigneeID)
		case handlerOrDesk:
			if s.AssigneeID != "" {
				add(s.AssigneeID)
			} else {
				err = desk(owner)
			}
		case reporter:
			add(s.ReporterID)
		case firstOwner:
			add(s.FirstOwnerID)
		case ownerDispatchers:
			err = desk(owner)
		case parentSupervisors:
			if p := org.Parent(owner); p != "" {
				err = find([]string{p}, org.RoleSupervisor, org.RoleLeader, org.RoleDispatcher)
			}
		case disciplineAbove:
			var units []string // none: a city-wide event (the monthly report) tells them all
			if owner != "" {
				units = ancestors(owner)
			}
			var ls []string
			ls, err = n.Dir.Logins(ctx, units, []string{org.RoleDiscipline})
			add(ls...)
		case gridWorker:
			add(s.WorkerID)
			if s.WorkerID == "" && s.GridID != "" {
				err = find([]string{s.GridID}, org.GridRoles...)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
