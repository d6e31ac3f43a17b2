package node_test

import (
	"context"
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
			// One new change record, and none replaced by a duplicate.
			if got := after.LastSeq - before.LastSeq; got != 1 || after.NumDeleted != before.NumDeleted {
				t.Errorf("change feed: %d new records, %d replaced; want 1 and 0", got, after.NumDeleted-before.NumDeleted)
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
