package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
)

// Deadlines (限时办结) are kept as JetStream message schedules, one per incident and
// kind, replaced whenever the deadline moves and cancelled when it no longer applies;
// they live in the broker, so they survive restarts. When one fires, the SLA consumer
// sends incident.sla to the incident's writer, which checks it is still current.

// Timer kinds.
const (
	TimerAccept = "accept" // a reported item not accepted by its AcceptBy
	TimerWarn   = "warn"   // due soon (SLAOptions.WarnBefore ahead of DueAt)
	TimerDue    = "due"    // overdue
)

var timerKinds = [...]string{TimerAccept, TimerWarn, TimerDue}

// SLAOptions tune the deadlines.
type SLAOptions struct {
	// WarnBefore is how long before the due time the due-soon warning fires (0: none).
	WarnBefore time.Duration
	// UrgentAccept is how soon an urgent item must be accepted (特事特办).
	UrgentAccept time.Duration
}

// deadlines are the times the timers of an incident fire (zero: no timer), in the
// order of timerKinds.
type deadlines [len(timerKinds)]time.Time

// TimerData is what a timer carries: the deadline it was set for, so a timer that
// fires after its deadline moved is recognised as stale.
type TimerData struct {
	IncidentID string    `json:"incidentId"`
	Kind       string    `json:"kind"`
	Deadline   time.Time `json:"deadline"`
}

func (inc *Incident) open() bool {
	switch inc.Status {
	case Accepted, Assigned, InProgress, Delayed:
		return true
	}
	return false
}

// deadlines derives the incident's timers from its state; WarnBefore is applied when
// scheduling.
func (inc *Incident) deadlines() deadlines {
	var d deadlines
	if inc.Overdue {
		return d // already escalated for supervision: no more timers until it moves on
	}
	if inc.Status == Reported && inc.AcceptBy != nil {
		d[0] = *inc.AcceptBy
	}
	if inc.open() && inc.DueAt != nil {
		d[1], d[2] = *inc.DueAt, *inc.DueAt
	}
	return d
}

func timerName(id, kind string) string { return "incident." + id + "." + kind }

// syncTimers schedules the timers that changed since the incident was read.
func (s *Service) syncTimers(tx *command.Tx, inc *Incident) error {
	now := inc.deadlines()
	warn := s.sla.Load().WarnBefore
	for i, kind := range timerKinds {
		if sameInstant(now[i], inc.timers[i]) {
			continue
		}
		name := timerName(inc.ID, kind)
		at := now[i]
		if kind == TimerWarn && !at.IsZero() {
			if warn <= 0 || at.Add(-warn).Before(tx.Now()) {
				at = time.Time{} // no warning, or already too late for one
			} else {
				at = at.Add(-warn)
			}
		}
		if at.IsZero() {
			if !inc.timers[i].IsZero() {
				tx.Unschedule(name)
			}
			continue
		}
		if err := tx.Schedule(name, at, TimerData{IncidentID: inc.ID, Kind: kind, Deadline: now[i]}); err != nil {
			return err
		}
	}
	inc.timers = now
	return nil
}

// arrive starts the acceptance clock of an item that has just reached its owning unit:
// 1 working day (as for the refusal filing window), or UrgentAccept when urgent.
func (s *Service) arrive(inc *Incident, now time.Time) {
	var by time.Time
	if inc.Urgent {
		by = now.Add(s.sla.Load().UrgentAccept)
	} else {
		var err error
		by, err = s.calendar.Load().Due(now, 1)
		if errors.Is(err, workday.ErrOutOfRange) || err != nil {
			by = now.Add(24 * time.Hour)
		}
	}
	by = by.UTC().Truncate(time.Millisecond)
	inc.AcceptBy = &by
}

// sameInstant compares times as the database keeps them (to the millisecond).
func sameInstant(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

// CmdSLA is a fired deadline; system only.
const CmdSLA = "incident.sla"

// applySLA acts on a deadline that passed: a due-soon warning event; or, for a missed
// acceptance or due time, the item is marked overdue and escalated for supervision
// (督办): it stays with its owner and the parent unit is told (incident.overdue) and
// may take it over. An urgent item is passed up at once instead.
func (s *Service) applySLA(tx *command.Tx, c *command.Command) error {
	if !c.Actor.System {
		return fault.New(fault.Forbidden, "forbidden", "incident.sla is for the timers only")
	}
	var t TimerData // the arguments of incident.sla
	if err := json.Unmarshal(c.Args, &t); err != nil || !validID(t.IncidentID) {
		return fault.New(fault.Invalid, "invalid_args", "incidentId must be a UUIDv7")
	}
	inc, err := s.load(tx, c.Actor, t.IncidentID)
	if err != nil {
		return err
	}
	i := -1
	for k, kind := range timerKinds {
		if kind == t.Kind {
			i = k
		}
	}
	if i < 0 || !sameInstant(inc.deadlines()[i], t.Deadline) {
		return nil // the deadline moved or no longer applies: a stale timer
	}
	path := org.PathSubject(inc.UnitID)
	if t.Kind == TimerWarn {
		return tx.Emit("incident.dueSoon", path, inc.Wire())
	}
	now := tx.Now()
	reason := "not accepted by " + t.Deadline.In(workday.Location()).Format("2006-01-02 15:04")
	if t.Kind == TimerDue {
		reason = "not finished by " + t.Deadline.In(workday.Location()).Format("2006-01-02 15:04")
	}
	inc.Overdue = true
	inc.History = append(inc.History, HistoryEntry{At: now, By: c.Actor.UserID, Action: "overdue", From: inc.Status, To: inc.Status,
		Reason: reason, Unit: inc.UnitID})
	supervisor := org.Parent(inc.UnitID)
	event := "incident.overdue"
	if inc.Urgent && supervisor != "" {
		// 特事特办: an urgent item escalates on the first missed step.
		from := inc.UnitID
		if err := escalate(inc); err != nil {
			return err
		}
		inc.Status = Reported
		s.arrive(inc, now)
		inc.History = append(inc.History, HistoryEntry{At: now, By: c.Actor.UserID, Action: "escalate", To: Reported,
			Reason: "urgent item missed its deadline at " + from, Unit: inc.UnitID})
		event = "incident.escalated"
	}
	inc.UpdatedAt = now
	inc.Version++
	if err := s.put(tx, inc, event); err != nil {
		return err
	}
	if event != "incident.overdue" {
		return tx.Emit("incident.overdue", path, Overdue{Incident: inc.Wire(), Supervisor: supervisor, Kind: t.Kind})
	}
	return nil
}

// Overdue is the data of incident.overdue when an urgent item was passed up at once;
// otherwise the event carries the incident, and its supervisor is the parent unit of
// its owner.
type Overdue struct {
	Incident   Incident `json:"incident"`
	Supervisor string   `json:"supervisor"`
	Kind       string   `json:"kind"`
}

// Timers is the consumer of fired deadlines: it hands each to the incident's writer.
type Timers struct {
	JS    jetstream.JetStream
	Names command.Names
	Bus   *command.Bus
	Svc   *Service
	Log   *slog.Logger
}

// Run consumes until ctx ends; it returns once the consumer is set up.
func (tm *Timers) Run(ctx context.Context) error {
	stream, err := tm.JS.Stream(ctx, tm.Names.TmrStream())
	if err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	return command.Work(ctx, stream, "sla", []string{tm.Names.TimerSubject("incident.>")}, tm.Log, tm.handle)
}

func (tm *Timers) handle(ctx context.Context, data []byte) error {
	var t TimerData
	if err := json.Unmarshal(data, &t); err != nil || t.IncidentID == "" {
		tm.Log.Error("timers: undecodable timer dropped", "err", err)
		return nil
	}
	actor := org.SystemActor("sla")
	raw, _ := json.Marshal(t)
	key, err := tm.Svc.Route(ctx, actor, CmdSLA, raw)
	if err != nil {
		return err
	}
	id := "sla-" + t.IncidentID + "-" + t.Kind + "-" + strconv.FormatInt(t.Deadline.Unix(), 10)
	_, err = tm.Bus.Do(ctx, id, CmdSLA, key, actor, t, 0)
	return err
}
