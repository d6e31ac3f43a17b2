package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// latencies records, per endpoint, how long the handsets' requests took as the handset
// saw them (the server's time and the loopback network), and which failed. Only
// requests while on is set are recorded: the run, not the setup or the final check.
type latencies struct {
	on atomic.Bool
	mu sync.Mutex
	by map[string]*endpointTimes
}

type endpointTimes struct {
	took   []time.Duration
	failed map[string]int // "HTTP 503", "transport: …"
}

// timedTransport is the real network under a handset's simulated one: what reaches it
// was sent.
type timedTransport struct {
	base http.RoundTripper
	lat  *latencies
}

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.lat.on.Load() {
		return t.base.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	took := time.Since(start)
	var failed string
	switch {
	case err != nil:
		failed = "transport: " + err.Error()
	case resp.StatusCode >= 400:
		failed = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	t.lat.add(req.Method+" "+endpointOf(req.URL.Path), took, failed)
	return resp, err
}

// endpointOf names a request's route: ids in the path become {id}.
func endpointOf(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.ContainsAny(p, "0123456789") && len(p) >= 6 {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func (l *latencies) add(endpoint string, took time.Duration, failed string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[string]*endpointTimes{}
	}
	e := l.by[endpoint]
	if e == nil {
		e = &endpointTimes{failed: map[string]int{}}
		l.by[endpoint] = e
	}
	e.took = append(e.took, took)
	if failed != "" {
		e.failed[failed[:min(len(failed), 120)]]++
	}
}

// errors is how many recorded requests failed, leaving out 401s: an expired access
// token is answered 401 and the handset refreshes it, as the protocol says.
func (l *latencies) errors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.by {
		for why, c := range e.failed {
			if why != "HTTP 401" {
				n += c
			}
		}
	}
	return n
}

// print writes one line per endpoint: requests, failures, p50, p99 and the slowest.
func (l *latencies) print(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.by) == 0 {
		return
	}
	fmt.Fprintf(w, "latency as the handsets saw it, during the run\n  %-28s %8s %7s %9s %9s %9s\n", "endpoint", "requests", "failed", "p50 ms", "p99 ms", "max ms")
	for _, name := range slices.Sorted(maps.Keys(l.by)) {
		e := l.by[name]
		slices.Sort(e.took)
		n := 0
		for _, c := range e.failed {
			n += c
		}
		fmt.Fprintf(w, "  %-28s %8d %7d %9.1f %9.1f %9.1f\n", name, len(e.took), n,
			msOf(quantile(e.took, 0.50)), msOf(quantile(e.took, 0.99)), msOf(e.took[len(e.took)-1]))
		for _, why := range slices.Sorted(maps.Keys(e.failed)) {
			fmt.Fprintf(w, "    failed: %d× %s\n", e.failed[why], why)
		}
	}
}

// quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
