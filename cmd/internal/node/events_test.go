package node_test

import (
	"bufio"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// listen opens /v1/sync/events for c and counts sync events until stop.
func listen(t *testing.T, h *nodetest.Harness, c *nodetest.Client, count *atomic.Int32) (ready chan struct{}, stop func()) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.URL+"/v1/sync/events", nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ready = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(resp.Body)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first && strings.HasPrefix(line, ": connected") {
				close(ready)
				first = false
			}
			if line == "event: sync" {
				count.Add(1)
			}
		}
	}()
	return ready, func() { resp.Body.Close() }
}

// A burst of 50 changes reaches an online client as a few coalesced pokes; a client
// whose scope did not change gets none.
func TestSyncEventsCoalesceAndFollowScope(t *testing.T) {
	h := nodetest.Start(t, func(c *node.Config, _ *node.Options) { c.PokeInterval = time.Second })
	h.Org(2)
	var inScope, outOfScope atomic.Int32
	r1, stop1 := listen(t, h, h.Login("dispatcher", "web-d"), &inScope)
	defer stop1()
	r2, stop2 := listen(t, h, h.Login("workerb", "phone-b"), &outOfScope)
	defer stop2()
	<-r1
	<-r2
	w := h.Login("worker1", "phone-1")
	start := time.Now()
	for i := 0; i < 5; i++ {
		names, args := make([]string, 10), make([]any, 10)
		for k := range names {
			names[k], args[k] = "incident.report", nodetest.Report(newID(t))
		}
		if st, _ := w.Push(w.Queue(names, args)); st != 200 {
			t.Fatalf("push: %d", st)
		}
	}
	burst := time.Since(start)
	time.Sleep(2500 * time.Millisecond)
	// Every stream starts with one poke (whatever changed while disconnected), then
	// one at the first change, at most one per second of the burst and one for what
	// arrived during the last wait.
	got := inScope.Load() - 1
	if maxPokes := int32(burst/time.Second) + 2; got < 1 || got > maxPokes {
		t.Errorf("dispatcher got %d pokes for 50 changes in %s; want 1..%d", got, burst, maxPokes)
	}
	if n := outOfScope.Load() - 1; n != 0 {
		t.Errorf("a worker of another community got %d pokes", n)
	}
}

// An open event stream does not hold up a shutdown.
func TestShutdownEndsEventStreams(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	var n atomic.Int32
	ready, stop := listen(t, h, h.Login("worker1", "p"), &n)
	defer stop()
	<-ready
	start := time.Now()
	h.Stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown with an open event stream took %s", d)
	}
}
