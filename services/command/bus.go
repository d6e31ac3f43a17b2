package command

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus submits commands made by the server or an admin (not handset mutations, which
// fieldsync submits with their own ids) and waits for their outcome.
type Bus struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names Names
	now   func() time.Time

	mu  sync.Mutex
	res jetstream.Stream // the outcomes, opened on first need
}

// NewBus returns a bus.
func NewBus(nc *nats.Conn, js jetstream.JetStream, names Names) *Bus {
	return &Bus{nc: nc, js: js, names: names, now: time.Now}
}

// Do publishes a command on the partition of key and waits up to wait for its outcome.
// id may be empty (a fresh id is made) or deterministic (a seed step), in which case a
// repeat within the duplicate window is dropped by JetStream.
func (b *Bus) Do(ctx context.Context, id, name, key string, actor org.Actor, args any, wait time.Duration) (*Outcome, error) {
	if id == "" {
		id = uuid.NewString()
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, fault.Wrap(err, "encode command")
	}
	c := Command{ID: "sys-" + id, Name: name, Args: raw, Actor: actor, IssuedAt: b.now().UTC(), Key: key}
	ch := make(chan *nats.Msg, 1)
	sub, err := b.nc.ChanSubscribe(b.names.ResSubject(c.ID), ch)
	if err != nil {
		return nil, fault.Wrap(err, "subscribe outcome")
	}
	defer sub.Unsubscribe()
	data, _ := json.Marshal(c)
	ack, err := b.js.Publish(ctx, b.names.CmdSubject(key), data, jetstream.WithMsgID(c.ID))
	if err != nil {
		return nil, fault.Wrap(err, "publish command")
	}
	if wait <= 0 {
		return nil, nil
	}
	if ack.Duplicate {
		// The same command was sent before (a retry): its outcome may be stored already.
		if o := b.stored(ctx, c.ID); o != nil {
			return o, nil
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m := <-ch:
		var o Outcome
		if err := json.Unmarshal(m.Data, &o); err != nil {
			return nil, fault.Wrap(err, "decode outcome")
		}
		return &o, nil
	case <-t.C:
		return nil, fault.New(fault.Unavailable, "pending", "the command is queued but not applied yet")
	case <-ctx.Done():
		return nil, fault.Wrap(ctx.Err(), "wait for outcome")
	}
}

// Err turns a rejected outcome into an error of the matching kind.
func (o *Outcome) Err() error {
	if o == nil || o.Status == Applied {
		return nil
	}
	e := &fault.Error{Kind: fault.Conflict, Code: o.Error.Code, Message: o.Error.Message, Fields: o.Error.Fields}
	switch o.Error.Code {
	case "invalid_args":
		e.Kind = fault.Invalid
	case "forbidden", "out_of_scope":
		e.Kind = fault.Forbidden
	case "not_found":
		e.Kind = fault.NotFound
	case "not_implemented":
		e.Kind = fault.Unprocessable
	}
	return e
}

// Request is one command for DoAll.
type Request struct {
	ID    string // empty: a fresh id
	Name  string
	Key   string
	Actor org.Actor
	Args  any
}

// DoAll publishes many commands at once and waits up to wait for all their outcomes,
// returned in the order of reqs. Commands on different partitions may be applied in
// any order relative to each other.
func (b *Bus) DoAll(ctx context.Context, reqs []Request, wait time.Duration) ([]Outcome, error) {
	ch := make(chan *nats.Msg, len(reqs)+16)
	sub, err := b.nc.ChanSubscribe(b.names.Prefix+".res._sys.*", ch)
	if err != nil {
		return nil, fault.Wrap(err, "subscribe outcomes")
	}
	defer sub.Unsubscribe()
	index := map[string]int{}
	futs := make([]jetstream.PubAckFuture, 0, len(reqs))
	now := b.now().UTC()
	for i, r := range reqs {
		id := r.ID
		if id == "" {
			id = uuid.NewString()
		}
		raw, err := json.Marshal(r.Args)
		if err != nil {
			return nil, fault.Wrap(err, "encode command")
		}
		c := Command{ID: "sys-" + id, Name: r.Name, Args: raw, Actor: r.Actor, IssuedAt: now, Key: r.Key}
		index[c.ID] = i
		data, _ := json.Marshal(c)
		m := nats.NewMsg(b.names.CmdSubject(r.Key))
		m.Data = data
		f, err := b.js.PublishMsgAsync(m, jetstream.WithMsgID(c.ID))
		if err != nil {
			return nil, fault.Wrap(err, "publish command")
		}
		futs = append(futs, f)
	}
	out := make([]Outcome, len(reqs))
	left := len(reqs)
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			if !ack.Duplicate {
				continue
			}
			// Published before (a repeated seed step): its outcome may be stored already.
			var c Command
			_ = json.Unmarshal(f.Msg().Data, &c)
			if o := b.stored(ctx, c.ID); o != nil && out[index[c.ID]].Status == "" {
				out[index[c.ID]] = *o
				left--
			}
		case err := <-f.Err():
			return nil, fault.Wrap(err, "publish command")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for left > 0 {
		select {
		case m := <-ch:
			var o Outcome
			if json.Unmarshal(m.Data, &o) != nil {
				continue
			}
			if i, ok := index[o.ID]; ok && out[i].Status == "" {
				out[i] = o
				left--
			}
		case <-t.C:
			return out, fault.New(fault.Unavailable, "pending", fmt.Sprintf("%d of %d commands not applied within %s", left, len(reqs), wait))
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, nil
}

// stored returns the outcome kept for a command already applied, or nil.
func (b *Bus) stored(ctx context.Context, id string) *Outcome {
	b.mu.Lock()
	if b.res == nil {
		b.res, _ = b.js.Stream(ctx, b.names.ResStream())
	}
	res := b.res
	b.mu.Unlock()
	if res == nil {
		return nil
	}
	m, err := res.GetLastMsgForSubject(ctx, b.names.ResSubject(id))
	if err != nil {
		return nil
	}
	var o Outcome
	if json.Unmarshal(m.Data, &o) != nil {
		return nil
	}
	return &o
}

// ScheduleTimer sets a timer from outside the write path (a server job such as a
// monthly report): data is delivered on TimerSubject(target) at at. Each name holds
// one schedule; setting the same name and time again changes nothing.
func ScheduleTimer(ctx context.Context, js jetstream.JetStream, names Names, name, target string, at time.Time, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fault.Wrap(err, "encode timer")
	}
	m := nats.NewMsg(names.SchedSubject(name))
	m.Data = raw
	_, err = js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("sched:%s:%d", name, at.UnixMilli())),
		jetstream.WithScheduleAt(at), jetstream.WithScheduleTarget(names.TimerSubject(target)))
	if err != nil {
		return fmt.Errorf("schedule %s: %w", name, err)
	}
	return nil
}
