package node_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/nats-io/nats.go/jetstream"
)

// crashOnce returns a hook that stops the applier the first time it runs while armed.
func crashOnce(armed *atomic.Bool) func(int) error {
	return func(int) error {
		if armed.CompareAndSwap(true, false) {
			return command.ErrStopped
		}
		return nil
	}
}

// subjectCount counts the messages a stream holds on subjects matching filter.
func subjectCount(t *testing.T, js jetstream.JetStream, stream, filter string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func streamState(t *testing.T, js jetstream.JetStream, stream string) jetstream.StreamState {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// waitApplied resends mutation m until its outcome is final.
func waitApplied(t *testing.T, c *nodetest.Client, m []nodetest.Mutation) nodetest.PushResult {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, r := c.Push(m)
		if st == 200 && r.Results[0].Status != "pending" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("mutation still not final: %d %+v", st, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A crash between the database write and the publish (or between the publish and the
// ack) loses nothing and doubles nothing: after a restart the incident, its event, its
// change-feed record and its outcome each exist exactly once.
func TestCrashBetweenWriteAndPublish(t *testing.T) {
	for _, point := range []string{"after-write", "after-publish"} {
		t.Run(point, func(t *testing.T) {
			var armed atomic.Bool
			h := nodetest.Start(t, func(c *node.Config, o *node.Options) {
				c.PushWait = 500 * time.Millisecond
				if point == "after-write" {
					o.Hooks.AfterWrite = crashOnce(&armed)
				} else {
					o.Hooks.AfterPublish = crashOnce(&armed)
				}
			})
			h.Org(1)
			w := h.Login("worker1", "phone-1")
			id := newID(t)
			m := w.Queue([]string{"incident.report"}, []any{nodetest.Report(id)})
			names := h.Node.Names
			before := streamState(t, h.Node.JS, names.ChgStream())
			armed.Store(true)
			st, r := w.Push(m)
			if st != 200 {
				t.Fatalf("push: %d %s", st, w.LastBody)
			}
			if point == "after-write" {
				if r.Results[0].Status != "pending" {
					t.Fatalf("the applier should have stopped before publishing the outcome: %+v", r)
				}
				if n, _ := h.Node.Incidents.Count(context.Background()); n != 1 {
					t.Fatalf("the write should have happened before the crash: %d incidents", n)
				}
				if n := subjectCount(t, h.Node.JS, names.EvtStream(), names.EvtSubject("incident.reported", ">")); n != 0 {
					t.Fatalf("event published before the crash point: %d", n)
				}
			}
			// An applier that stopped makes the node not ready.
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, body := h.Anon().Raw("GET", "/readyz", nil, nil)
				if st == 503 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz with a stopped applier: %d %s", st, body)
				}
				time.Sleep(20 * time.Millisecond)
			}
			h.Restart(func(c *node.Config, o *node.Options) { o.Hooks = command.Hooks{} })
			w2 := h.Login("worker1", "phone-1")
			r = waitApplied(t, w2, m)
			if r.Results[0].Status != "applied" {
				t.Fatalf("after restart: %+v", r.Results[0])
			}
			// Resending once more is answered from the stored outcome.
			_ = waitApplied(t, w2, m)
			if n, _ := h.Node.Incidents.Count(context.Background()); n != 1 {
				t.Errorf("incidents: %d, want 1", n)
			}
			if n := subjectCount(t, h.Node.JS, names.EvtStream(), names.EvtSubject("incident.reported", ">")); n != 1 {
				t.Errorf("incident.reported events: %d, want exactly 1", n)
			}
			if n := subjectCount(t, h.Node.JS, names.ResStream(), names.ResSubject(command.ClientCommandID("phone-1", 1))); n != 1 {
				t.Errorf("outcomes: %d, want 1", n)
			}
			after := streamState(t, h.Node.JS, names.ChgStream())
			// One incident record on the change feed, and no record replaced by a
			// duplicate (the dispatcher's notification of the new item is a record too).
			if got := subjectCount(t, h.Node.JS, names.ChgStream(), names.ChgSubject("*.*.*.*.*", "incidents", "*")); got != 1 || after.NumDeleted != before.NumDeleted {
				t.Errorf("change feed: %d incident records, %d replaced; want 1 and 0", got, after.NumDeleted-before.NumDeleted)
			}
			// The pull shows it once.
			_, p := w2.Pull("", 100)
			k := 0
			for _, c := range p.Changes {
				if c.ID == id {
					k++
				}
			}
			if k != 1 || p.LastMutationID != 1 {
				t.Errorf("pull: incident seen %d times, lastMutationId %d", k, p.LastMutationID)
			}
		})
	}
}

// The embedded stack (FerretDB on SQLite and nats-server in the data dir) stops and
// starts many times in one process, keeps its data, and finishes a batch interrupted
// by a crash.
func TestEmbeddedStackRestarts(t *testing.T) {
	dir := t.TempDir()
	var armed atomic.Bool
	h := nodetest.StartEmbedded(t, dir, func(c *node.Config, o *node.Options) {
		c.PushWait = 500 * time.Millisecond
		o.Hooks.AfterWrite = crashOnce(&armed)
	})
	h.Org(1)
	w := h.Login("worker1", "phone-1")
	id := newID(t)
	m := w.Queue([]string{"incident.report"}, []any{nodetest.Report(id)})
	armed.Store(true)
	if st, r := w.Push(m); st != 200 || r.Results[0].Status != "pending" {
		t.Fatalf("push: %d %+v", st, r)
	}
	for i := 0; i < 4; i++ {
		h.Restart(nil)
	}
	w2 := h.Login("worker1", "phone-1")
	if r := waitApplied(t, w2, m); r.Results[0].Status != "applied" {
		t.Fatalf("after restarts: %+v", r.Results[0])
	}
	names := h.Node.Names
	if n := subjectCount(t, h.Node.JS, names.EvtStream(), names.EvtSubject("incident.reported", ">")); n != 1 {
		t.Errorf("incident.reported events: %d, want 1", n)
	}
	if n, _ := h.Node.Incidents.Count(context.Background()); n != 1 {
		t.Errorf("incidents: %d, want 1", n)
	}
}

// The applier commits the next batch's journal while the previous batch is still being
// written. A crash with both in flight — the first written but not published, the
// second committed but not written — completes both after a restart, in order, each
// exactly once.
func TestCrashWithTwoBatchesInFlight(t *testing.T) {
	var armed atomic.Bool
	release := make(chan struct{})
	h := nodetest.Start(t, func(c *node.Config, o *node.Options) {
		c.PushWait = 300 * time.Millisecond
		o.Hooks.AfterWrite = func(int) error {
			if armed.CompareAndSwap(true, false) {
				<-release
				return command.ErrStopped
			}
			return nil
		}
	})
	h.Org(2)
	a := h.Login("worker1", "phone-a")
	b := h.Login("worker2", "phone-b")
	idA, idB := newID(t), newID(t)
	ma := a.Queue([]string{"incident.report"}, []any{nodetest.Report(idA)})
	mb := b.Queue([]string{"incident.report"}, []any{nodetest.Report(idB)})
	journals := func() uint64 {
		return streamState(t, h.Node.JS, h.Node.Names.JrnStream()).LastSeq
	}
	armed.Store(true)
	if st, r := a.Push(ma); st != 200 || r.Results[0].Status != "pending" {
		t.Fatalf("first push should wait in the second stage: %d %+v", st, r)
	}
	before := journals()
	if st, r := b.Push(mb); st != 200 || r.Results[0].Status != "pending" {
		t.Fatalf("second push: %d %+v", st, r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for journals() != before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("the second batch was never committed while the first was in flight")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, _ := h.Node.Incidents.Count(context.Background()); n != 1 {
		t.Fatalf("before the crash only the first batch is written: %d incidents", n)
	}
	close(release)
	h.Restart(func(c *node.Config, o *node.Options) { o.Hooks = command.Hooks{} })
	for _, x := range []struct {
		dev string
		m   []nodetest.Mutation
	}{{"phone-a", ma}, {"phone-b", mb}} {
		user := map[string]string{"phone-a": "worker1", "phone-b": "worker2"}[x.dev]
		c := h.Login(user, x.dev)
		if r := waitApplied(t, c, x.m); r.Results[0].Status != "applied" {
			t.Fatalf("%s after restart: %+v", x.dev, r.Results[0])
		}
	}
	if n, _ := h.Node.Incidents.Count(context.Background()); n != 2 {
		t.Errorf("incidents: %d, want 2", n)
	}
	names := h.Node.Names
	if n := subjectCount(t, h.Node.JS, names.EvtStream(), names.EvtSubject("incident.reported", ">")); n != 2 {
		t.Errorf("incident.reported events: %d, want exactly 2", n)
	}
	d := h.Login("dispatcher", "desk")
	seen := map[string]int{}
	for cursor := ""; ; {
		_, p := d.Pull(cursor, 500)
		for _, c := range p.Changes {
			seen[c.ID]++
		}
		cursor = p.Cursor
		if !p.HasMore {
			break
		}
	}
	if seen[idA] != 1 || seen[idB] != 1 {
		t.Errorf("dispatcher's pull: first %d, second %d times; want 1 and 1", seen[idA], seen[idB])
	}
}

// A restart right after two batches changed the same record — before the checkpoint
// was saved — must not publish the older, finished batch again: the change feed keeps
// only a record's latest version, so JetStream has forgotten the older message's id
// and would take the repeat as news, leaving the record looking as it was before.
func TestRestartKeepsLatestVersionOfRecord(t *testing.T) {
	h := nodetest.StartEmbedded(t, t.TempDir(), nil) // a restart restarts the broker too
	h.Org(1)
	w := h.Login("worker1", "phone-1")
	d := h.Login("dispatcher", "desk")
	id := newID(t)
	if _, r := w.Push(w.Queue([]string{"incident.report"}, []any{nodetest.Report(id)})); r.Results[0].Status != "applied" {
		t.Fatalf("report: %+v", r)
	}
	if _, r := d.Push(d.Queue([]string{"incident.accept"}, []any{map[string]any{"incidentId": id}})); r.Results[0].Status != "applied" {
		t.Fatalf("accept: %+v", r)
	}
	h.Restart(nil) // at once: the partition's checkpoint is saved only after a second idle
	d = h.Login("dispatcher", "desk")
	var inc struct{ Status string }
	if st := d.Do("GET", "/v1/incidents/"+id, nil, &inc); st != 200 || inc.Status != "accepted" {
		t.Errorf("after restart: %d %+v", st, inc)
	}
	_, p := d.Pull("", 500)
	for _, c := range p.Changes {
		if c.ID == id && !strings.Contains(string(c.Doc), `"status":"accepted"`) {
			t.Errorf("the pull shows the incident as %s", c.Doc)
		}
	}
}
