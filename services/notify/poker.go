package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/device"
	"github.com/gridkeeper/gridkeeper/services/directory"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats-server/v2/server/gsl"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SyncData is the payload of a sync poke (SYNC-PROTOCOL "Poke").
var SyncData = map[string]string{"type": "sync"}

// PokerOptions configures a Poker.
type PokerOptions struct {
	// Interval is the least time between two pokes to one device; changes meanwhile
	// are covered by the next poke.
	Interval time.Duration
	// HomeUnit tells a user's current home unit ("" for an unknown user).
	HomeUnit func(ctx context.Context, login string) (string, error)
	Logger   *slog.Logger
}

// Poker sends a sync poke to every registered device whose scope changed: it watches
// the change feed, matches each change's subject against the scopes of the devices
// that have a push token, and pokes each such device at most once per Interval. A
// device whose user moves to another unit is poked at once, so it pulls its new scope.
// It runs outside the request path; a lost poke costs only latency, as the device
// pulls on its next start or poke.
type Poker struct {
	nc      *nats.Conn
	names   command.Names
	devices jetstream.KeyValue
	sender  Sender
	opt     PokerOptions
	log     *slog.Logger

	mu     sync.Mutex
	scopes *gsl.GenericSublist[string] // change-feed filter → device id
	devs   map[string]*pokeDevice      // by device id
	byUser map[string]map[string]bool  // login → device ids
	// Sent counts pokes handed to the sender; Dropped counts tokens removed because
	// the push service called them unregistered.
	Sent, Dropped atomic.Int64
}

type pokeDevice struct {
	id, user, token, locale string
	filters                 []string
	dirty                   bool
	last                    time.Time // last poke sent
}

// NewPoker makes a poker; Run starts it.
func NewPoker(nc *nats.Conn, names command.Names, devices jetstream.KeyValue, sender Sender, opt PokerOptions) *Poker {
	if opt.Interval <= 0 {
		opt.Interval = 2 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Poker{nc: nc, names: names, devices: devices, sender: sender, opt: opt, log: opt.Logger,
		scopes: gsl.NewSublist[string](), devs: map[string]*pokeDevice{}, byUser: map[string]map[string]bool{}}
}

// Run pokes until ctx ends. It returns once the device registrations are loaded and
// the change feed watched, with the work going on in the background; the error is for
// a start that failed.
func (p *Poker) Run(ctx context.Context) error {
	w, err := p.devices.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch devices: %w", err)
	}
	for e := range w.Updates() {
		if e == nil {
			break // every registration so far is loaded
		}
		p.register(ctx, e)
	}
	chg, err := p.nc.Subscribe(p.names.Prefix+".chg.>", func(m *nats.Msg) { p.changed(m.Subject) })
	if err != nil {
		_ = w.Stop()
		return fmt.Errorf("watch the change feed: %w", err)
	}
	moved, err := p.nc.Subscribe(p.names.EvtSubject(directory.UserMovedEvent, ">"), func(m *nats.Msg) {
		var ev command.Event
		var data struct {
			Login string `json:"login"`
		}
		if json.Unmarshal(m.Data, &ev) == nil && json.Unmarshal(ev.Data, &data) == nil {
			p.rescope(ctx, data.Login)
		}
	})
	if err != nil {
		_ = w.Stop()
		_ = chg.Unsubscribe()
		return fmt.Errorf("watch moves: %w", err)
	}
	go func() {
		defer func() {
			_ = w.Stop()
			_ = chg.Unsubscribe()
			_ = moved.Unsubscribe()
		}()
		tick := time.NewTicker(max(p.opt.Interval/4, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					p.register(ctx, e)
				}
			case now := <-tick.C:
				p.flush(ctx, now)
			}
		}
	}()
	return nil
}

// register follows one change of a device registration.
func (p *Poker) register(ctx context.Context, e jetstream.KeyValueEntry) {
	id := e.Key()
	var d device.Device
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &d) != nil || d.PushToken == nil {
		p.mu.Lock()
		p.forget(id)
		p.mu.Unlock()
		return
	}
	filters, err := p.filters(ctx, d.UserID)
	if err != nil {
		p.log.Warn("device not watched for pokes: its user's unit is unknown", "device", id, "err", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forget(id)
	pd := &pokeDevice{id: id, user: d.UserID, token: *d.PushToken, locale: d.Locale}
	p.devs[id] = pd
	if p.byUser[d.UserID] == nil {
		p.byUser[d.UserID] = map[string]bool{}
	}
	p.byUser[d.UserID][id] = true
	p.watch(pd, filters)
}

// filters are the change-feed subjects of a user's scope: the subtree of the home
// unit, and the user's own records.
func (p *Poker) filters(ctx context.Context, login string) ([]string, error) {
	fs := []string{p.names.ChgFilter(org.UserPath(login))}
	unit, err := p.opt.HomeUnit(ctx, login)
	if err != nil {
		return fs, err
	}
	if unit == "" {
		return fs, errors.New("no such user")
	}
	return append(fs, p.names.ChgFilter(org.SubtreeFilter(unit))), nil
}

// watch puts pd's filters in the sublist (p.mu held).
func (p *Poker) watch(pd *pokeDevice, filters []string) {
	for _, f := range filters {
		if err := p.scopes.Insert(f, pd.id); err == nil {
			pd.filters = append(pd.filters, f)
		}
	}
}

// forget drops a device (p.mu held).
func (p *Poker) forget(id string) {
	pd := p.devs[id]
	if pd == nil {
		return
	}
	for _, f := range pd.filters {
		_ = p.scopes.Remove(f, id)
	}
	delete(p.devs, id)
	if u := p.byUser[pd.user]; u != nil {
		delete(u, id)
		if len(u) == 0 {
			delete(p.byUser, pd.user)
		}
	}
}

// rescope follows a user to a new unit: the user's devices watch the new scope and
// are poked, so they pull it (and purge the old one).
func (p *Poker) rescope(ctx context.Context, login string) {
	filters, err := p.filters(ctx, login)
	if err != nil {
		p.log.Warn("moved user's new scope is unknown", "user", login, "err", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.byUser[login] {
		pd := p.devs[id]
		for _, f := range pd.filters {
			_ = p.scopes.Remove(f, id)
		}
		pd.filters = nil
		p.watch(pd, filters)
		pd.dirty = true
	}
}

// devicesOf returns a user's devices with a push token.
func (p *Poker) devicesOf(login string) []pokeDevice {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]pokeDevice, 0, len(p.byUser[login]))
	for id := range p.byUser[login] {
		if pd := p.devs[id]; pd != nil {
			out = append(out, pokeDevice{id: pd.id, user: pd.user, token: pd.token, locale: pd.locale})
		}
	}
	return out
}

// changed marks the devices whose scope holds subject. A new notification is not a
// reason to poke: its own push tells the device to pull.
func (p *Poker) changed(subject string) {
	if strings.Contains(subject, "."+Coll+".") {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scopes.Match(subject, func(id string) {
		if pd := p.devs[id]; pd != nil {
			pd.dirty = true
		}
	})
}

// flush pokes the changed devices not poked within the interval.
func (p *Poker) flush(ctx context.Context, now time.Time) {
	var msgs []Message
	p.mu.Lock()
	for _, pd := range p.devs {
		if pd.dirty && now.Sub(pd.last) >= p.opt.Interval {
			pd.dirty, pd.last = false, now
			msgs = append(msgs, Message{DeviceID: pd.id, Token: pd.token, Data: SyncData})
		}
	}
	p.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	results := p.sender.Send(ctx, msgs)
	p.Sent.Add(int64(len(msgs)))
	for i, r := range results {
		switch {
		case r.Unregistered:
			p.drop(ctx, msgs[i])
		case r.Err != nil:
			p.log.Warn("sync poke failed", "device", msgs[i].DeviceID, "err", r.Err)
		}
	}
}

// drop removes a dead token from the device's registration, unless the device has
// registered a new one meanwhile.
func (p *Poker) drop(ctx context.Context, m Message) {
	e, err := p.devices.Get(ctx, m.DeviceID)
	if err != nil {
		return
	}
	var d device.Device
	if json.Unmarshal(e.Value(), &d) != nil || d.PushToken == nil || *d.PushToken != m.Token {
		return
	}
	d.PushToken = nil
	d.UpdatedAt = time.Now().UTC()
	data, _ := json.Marshal(d)
	if _, err := p.devices.Update(ctx, m.DeviceID, data, e.Revision()); err != nil {
		p.log.Warn("could not drop an unregistered push token", "device", m.DeviceID, "err", err)
		return
	}
	p.Dropped.Add(1)
	p.log.Info("push token unregistered by the push service; dropped", "device", m.DeviceID)
}

// Watching counts the devices the poker would poke (registered with a push token).
func (p *Poker) Watching() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.devs)
}
