package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

func newID(t testing.TB) string {
	u, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// Eight handsets push 200 reports each at once, every batch sent twice concurrently,
// while a dispatcher pulls from an empty cursor. Afterwards exactly 1,600 incidents
// exist, both copies of every push got the same final outcome, and the pull saw every
// incident exactly once.
func TestConcurrentPushesAndPullNeverLoseOrDouble(t *testing.T) {
	// Both ways an applier reads: from memory after a preload, and by prefetch.
	for _, preload := range []string{"on", "off"} {
		t.Run("preload-"+preload, func(t *testing.T) { concurrentPushes(t, preload) })
	}
}

func concurrentPushes(t *testing.T, preload string) {
	const clients, perClient, batch = 8, 200, 20
	// A generous push wait: this test is about every outcome, not how fast it comes
	// (a loaded CI machine runs many test binaries on 2 cores).
	h := nodetest.Start(t, func(c *node.Config, _ *node.Options) { c.Preload, c.PushWait = preload, 30*time.Second })
	h.Org(clients)
	workers := make([]*nodetest.Client, clients)
	for i := range workers {
		workers[i] = h.Login(fmt.Sprintf("worker%d", i+1), fmt.Sprintf("phone-%d", i+1))
	}
	disp := h.Login("dispatcher", "web-dispatcher")

	seen := map[string]int{}
	var pullMu sync.Mutex
	cursor := ""
	pullOnce := func() (more bool) {
		st, p := disp.Pull(cursor, 97)
		if st != 200 {
			t.Errorf("pull: %d %s", st, disp.LastBody)
			return false
		}
		pullMu.Lock()
		for _, c := range p.Changes {
			if c.Collection == "incidents" {
				seen[c.ID]++
			}
		}
		pullMu.Unlock()
		cursor = p.Cursor
		return p.HasMore
	}
	stopPull := make(chan struct{})
	pullDone := make(chan struct{})
	go func() {
		defer close(pullDone)
		for {
			select {
			case <-stopPull:
				return
			default:
				pullOnce()
			}
		}
	}()

	ids := make([][]string, clients)
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < perClient/batch; b++ {
				names := make([]string, batch)
				args := make([]any, batch)
				for k := range names {
					id := newID(t)
					ids[i] = append(ids[i], id)
					names[k], args[k] = "incident.report", nodetest.Report(id)
				}
				muts := w.Queue(names, args)
				var answers [2]nodetest.PushResult
				var statuses [2]int
				var pw sync.WaitGroup
				for copy := 0; copy < 2; copy++ {
					pw.Add(1)
					go func() {
						defer pw.Done()
						statuses[copy], answers[copy] = w.Push(muts)
					}()
				}
				pw.Wait()
				for copy := 0; copy < 2; copy++ {
					if statuses[copy] != 200 || len(answers[copy].Results) != batch {
						t.Errorf("client %d batch %d copy %d: status %d, %d results", i, b, copy, statuses[copy], len(answers[copy].Results))
						return
					}
					for k, r := range answers[copy].Results {
						if r.ID != muts[k].ID || r.Status != "applied" || len(r.Changes) != 1 || r.Changes[0].ID != ids[i][b*batch+k] {
							t.Errorf("client %d mutation %d copy %d: %+v", i, muts[k].ID, copy, r)
						}
					}
				}
				if answers[0].LastMutationID < muts[batch-1].ID {
					t.Errorf("client %d: lastMutationId %d after pushing up to %d", i, answers[0].LastMutationID, muts[batch-1].ID)
				}
			}
		}()
	}
	wg.Wait()
	close(stopPull)
	<-pullDone
	for pullOnce() {
	}
	pullOnce()

	n, err := h.Node.Incidents.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != clients*perClient {
		t.Errorf("incidents stored: %d, want %d", n, clients*perClient)
	}
	if len(seen) != clients*perClient {
		t.Errorf("pull saw %d distinct incidents, want %d", len(seen), clients*perClient)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("incident %s pulled %d times", id, k)
		}
	}
	for i := range ids {
		for _, id := range ids[i] {
			if seen[id] != 1 {
				t.Errorf("client %d incident %s seen %d times", i, id, seen[id])
				break
			}
		}
	}
	// Re-sending an old batch days later returns the stored outcomes and stores nothing.
	h.Clock = nil
	old := []nodetest.Mutation{{ID: 1, Name: "incident.report", Args: nodetest.Report(ids[0][0])}}
	st, r := workers[0].Push(old)
	if st != 200 || r.Results[0].Status != "applied" || r.Results[0].Changes[0].ID != ids[0][0] {
		t.Errorf("resend of mutation 1: %d %+v", st, r)
	}
	if n2, _ := h.Node.Incidents.Count(context.Background()); n2 != n {
		t.Errorf("resend changed the count: %d -> %d", n, n2)
	}
	_ = time.Second
}
