package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/mobile-api/client"
)

func newID(t testing.TB) string {
	u, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// report is incident.report args for a new incident, at the next point of a lattice
// about 110 m apart, so the router never flags two test reports as duplicates.
func report(id string) map[string]any {
	n := reportPoint.Add(1)
	return map[string]any{"incidentId": id, "category": "place.sanitation", "description": "垃圾堆放未清运",
		"location": map[string]float64{"lat": 39.8 + float64(n%1000)*0.001, "lng": 116.3 + float64(n/1000%1000)*0.001}}
}

var reportPoint atomic.Int64

func open(t testing.TB, o client.Options) *client.Client {
	t.Helper()
	if o.Password == "" {
		o.Password = password
	}
	o.Platform, o.AppVersion = "android", "test"
	c, err := client.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func enqueueReports(t testing.TB, c *client.Client, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID(t)
		if _, err := c.Enqueue("incident.report", report(ids[i])); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func sync1(t testing.TB, c *client.Client) client.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := c.Sync(ctx)
	if err != nil {
		t.Fatalf("sync: %v (report %+v)", err, rep)
	}
	return rep
}

// closedURL is an address nothing listens on.
func closedURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	_ = ln.Close()
	return u
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameSet(t testing.TB, what string, got, want []string) {
	t.Helper()
	sort.Strings(got)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("%s: %d ids, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: %s where %s was expected", what, got[i], want[i])
		}
	}
}

// flaky wraps the default transport: it counts requests by path, and for those fail
// picks it performs the request and then loses the answer, as a radio dropping out
// after the server did the work.
type flaky struct {
	mu   sync.Mutex
	n    map[string]int
	fail func(path string, n int) bool
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[r.URL.Path]++
	k := f.n[r.URL.Path]
	f.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || f.fail == nil || !f.fail(r.URL.Path, k) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, errors.New("test: answer lost")
}

func (f *flaky) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[path]
}

// A worker queues 30 reports with no network; Sync fails and keeps them. Reopened on
// the same state with the server reachable, one Sync applies all 30. The server takes
// at most 16 mutations a push, so the client also halves its batch on 413.
func TestOfflineThenOnline(t *testing.T) {
	s := startServer(t, "GRID_MAX_MUTATIONS=16")
	s.org(1)
	dir := t.TempDir()
	c := open(t, client.Options{BaseURL: closedURL(t), Login: "worker1", StateDir: dir})
	ids := enqueueReports(t, c, 30)
	if _, err := c.Sync(context.Background()); err == nil {
		t.Fatal("sync with no server succeeded")
	}
	if q := c.Queue(); len(q) != 30 || q[0].ID != 1 || q[29].ID != 30 || c.LastMutationID() != 30 {
		t.Fatalf("queue after failed sync: %d mutations, last id %d", len(q), c.LastMutationID())
	}

	tr := &flaky{}
	c = open(t, client.Options{BaseURL: s.URL, Login: "worker1", StateDir: dir, HTTP: &http.Client{Transport: tr}})
	if len(c.Queue()) != 30 || c.LastMutationID() != 30 {
		t.Fatalf("reopened: %d queued, last id %d", len(c.Queue()), c.LastMutationID())
	}
	rep := sync1(t, c)
	if rep.Pushed != 30 || rep.Applied != 30 || rep.Rejected != 0 || rep.Pending != 0 {
		t.Errorf("report: %+v", rep)
	}
	// 30 refused with 413, then 15 and 15.
	if n := tr.count("/v1/sync/push"); n != 3 {
		t.Errorf("%d pushes, want 3 (one 413, two halves)", n)
	}
	if len(c.Queue()) != 0 || c.LastMutationID() != 30 {
		t.Errorf("after sync: %d queued, last id %d", len(c.Queue()), c.LastMutationID())
	}
	sameSet(t, "replica incidents", keys(c.Replica("incidents")), ids)
	sameSet(t, "server incidents", keys(s.incidents()), ids)
	if id, err := c.Enqueue("incident.report", report(newID(t))); err != nil || id != 31 {
		t.Errorf("next id %d, %v; want 31", id, err)
	}
}

// The first push reaches the server and is applied, but its answer is lost. The next
// Sync sends the same ids again and gets the stored outcomes: 30 incidents, each
// reported once.
func TestLostPushAnswer(t *testing.T) {
	s := startServer(t)
	s.org(1)
	tr := &flaky{fail: func(path string, n int) bool { return path == "/v1/sync/push" && n == 1 }}
	c := open(t, client.Options{BaseURL: s.URL, Login: "worker1", StateDir: t.TempDir(), HTTP: &http.Client{Transport: tr}})
	ids := enqueueReports(t, c, 30)
	if _, err := c.Sync(context.Background()); err == nil {
		t.Fatal("sync with a lost answer succeeded")
	}
	if len(c.Queue()) != 30 {
		t.Fatalf("queue after the lost answer: %d", len(c.Queue()))
	}
	if n := len(s.incidents()); n != 30 {
		t.Fatalf("the server stored %d incidents before the answer was lost, want 30", n)
	}
	rep := sync1(t, c)
	if rep.Pushed != 30 || rep.Applied != 30 || rep.Rejected != 0 {
		t.Errorf("resend: %+v", rep)
	}
	if len(c.Queue()) != 0 || len(c.Rejected()) != 0 {
		t.Errorf("after resend: %d queued, %d rejected", len(c.Queue()), len(c.Rejected()))
	}
	stored := s.incidents()
	sameSet(t, "server incidents", keys(stored), ids)
	for id, reports := range stored {
		if reports != 1 {
			t.Errorf("incident %s reported %d times", id, reports)
		}
	}
	sameSet(t, "replica incidents", keys(c.Replica("incidents")), ids)
}

// Access tokens stop working (the server is restarted with another signing key, which
// the server treats exactly like an expired token: 401 invalid_token); Sync refreshes
// and carries on. Then the session is ended (logout elsewhere): the refresh is refused
// and Sync logs in again. No mutation is lost on the way.
func TestTokenExpiry(t *testing.T) {
	s := startServer(t)
	s.org(1)
	tr := &flaky{}
	dir := t.TempDir()
	c := open(t, client.Options{BaseURL: s.URL, Login: "worker1", StateDir: dir, HTTP: &http.Client{Transport: tr}})
	ids := enqueueReports(t, c, 5)
	sync1(t, c)

	s.restart("client-test-key-client-test-key-0002")
	ids = append(ids, enqueueReports(t, c, 5)...)
	if rep := sync1(t, c); rep.Applied != 5 {
		t.Errorf("after the token expired: %+v", rep)
	}
	if l, r := tr.count("/v1/auth/login"), tr.count("/v1/auth/refresh"); l != 1 || r != 1 {
		t.Errorf("logins %d, refreshes %d; want 1 and 1", l, r)
	}

	// End the session as a logout from the device would.
	var sess struct{ AccessToken string }
	data, err := os.ReadFile(filepath.Join(dir, "auth.json"))
	if err != nil || json.Unmarshal(data, &sess) != nil {
		t.Fatalf("auth.json: %v", err)
	}
	if st := s.do("POST", "/v1/auth/logout", sess.AccessToken, map[string]string{}, nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	ids = append(ids, enqueueReports(t, c, 5)...)
	if rep := sync1(t, c); rep.Applied != 5 {
		t.Errorf("after the session ended: %+v", rep)
	}
	if l, r := tr.count("/v1/auth/login"), tr.count("/v1/auth/refresh"); l != 2 || r != 2 {
		t.Errorf("logins %d, refreshes %d; want 2 and 2", l, r)
	}
	if len(c.Queue()) != 0 || c.LastMutationID() != 15 {
		t.Errorf("%d queued, last id %d", len(c.Queue()), c.LastMutationID())
	}
	sameSet(t, "server incidents", keys(s.incidents()), ids)
}

// A dispatcher's first sync in pages of 7, where every third pull answer is lost and
// the app is restarted after each failure. Repeated Syncs converge to exactly the
// server's incidents, and the pages applied add up to one clean first sync: every
// restart resumed at its cursor instead of starting over.
func TestInterruptedFirstSync(t *testing.T) {
	s := startServer(t)
	s.org(2)
	for i, n := range []int{23, 17} {
		w := open(t, client.Options{BaseURL: s.URL, Login: []string{"worker1", "worker2"}[i], StateDir: t.TempDir()})
		enqueueReports(t, w, n)
		if rep := sync1(t, w); rep.Applied != n {
			t.Fatalf("worker %d: %+v", i+1, rep)
		}
	}
	serverIDs := keys(s.incidents())
	if len(serverIDs) != 40 {
		t.Fatalf("%d incidents on the server, want 40", len(serverIDs))
	}

	tr := &flaky{fail: func(path string, n int) bool { return path == "/v1/sync/pull" && n%3 == 0 }}
	dir := t.TempDir()
	var pages, pulled, failures int
	var c *client.Client
	for attempt := 0; ; attempt++ {
		if attempt == 30 {
			t.Fatalf("no convergence after %d attempts", attempt)
		}
		c = open(t, client.Options{BaseURL: s.URL, Login: "dispatcher", StateDir: dir, PullLimit: 7, HTTP: &http.Client{Transport: tr}})
		rep, err := c.Sync(context.Background())
		pages += rep.Pages
		pulled += rep.Pulled
		if err == nil {
			break
		}
		failures++
	}
	if failures < 2 {
		t.Errorf("only %d failed attempts; the test did not interrupt the sync", failures)
	}
	sameSet(t, "dispatcher replica", keys(c.Replica("incidents")), serverIDs)

	// The same first sync without interruptions.
	clean := open(t, client.Options{BaseURL: s.URL, Login: "dispatcher", StateDir: t.TempDir(), PullLimit: 7})
	rep := sync1(t, clean)
	sameSet(t, "clean replica", keys(clean.Replica("incidents")), serverIDs)
	if pages != rep.Pages || pulled != rep.Pulled {
		t.Errorf("interrupted sync applied %d pages with %d changes; a clean one %d pages with %d changes", pages, pulled, rep.Pages, rep.Pulled)
	}
	if rep.Pages < 6 {
		t.Errorf("a clean first sync took %d pages of 7; expected at least 6", rep.Pages)
	}
	t.Logf("first sync: %d pages, %d changes, %d failed attempts, %d pull requests", rep.Pages, rep.Pulled, failures, tr.count("/v1/sync/pull"))
}

// A mutation the server rejects (a grid worker may not accept an incident) is final:
// it leaves the queue for the rejected list and the ones after it are applied.
func TestRejectedDoesNotBlock(t *testing.T) {
	s := startServer(t)
	s.org(1)
	dir := t.TempDir()
	c := open(t, client.Options{BaseURL: s.URL, Login: "worker1", StateDir: dir})
	a, b, d := newID(t), newID(t), newID(t)
	for _, m := range []struct {
		name string
		args any
	}{{"incident.report", report(a)}, {"incident.accept", map[string]string{"incidentId": a}}, {"incident.report", report(b)}, {"incident.report", report(d)}} {
		if _, err := c.Enqueue(m.name, m.args); err != nil {
			t.Fatal(err)
		}
	}
	rep := sync1(t, c)
	if rep.Applied != 3 || rep.Rejected != 1 || len(c.Queue()) != 0 {
		t.Errorf("report %+v, %d queued", rep, len(c.Queue()))
	}
	sameSet(t, "replica", keys(c.Replica("incidents")), []string{a, b, d})
	c = open(t, client.Options{BaseURL: s.URL, Login: "worker1", StateDir: dir})
	rej := c.Rejected()
	if len(rej) != 1 || rej[0].Mutation.ID != 2 || rej[0].Mutation.Name != "incident.accept" || rej[0].Error.Code != "forbidden" || rej[0].Error.Message == "" {
		t.Fatalf("rejected after reopening: %+v", rej)
	}
	if err := c.DismissRejected(2); err != nil || len(c.Rejected()) != 0 {
		t.Errorf("dismiss: %v, %d left", err, len(c.Rejected()))
	}
}

// The server expects mutation 1 from a device whose queue starts at 3 (ids 1 and 2 were
// final here, and the server has no trace of them — as after a server restore). The
// client cannot fix that by sending anything: it reports a GapError and keeps the queue.
func TestGapKeepsQueue(t *testing.T) {
	s := startServer(t)
	s.org(1)
	dir := t.TempDir()
	box := map[string]any{"deviceId": "phone-gap", "lastMutationId": 3, "rejected": []any{},
		"queue": []any{map[string]any{"id": 3, "name": "incident.report", "args": report(newID(t)), "clientTime": time.Now()}}}
	data, _ := json.Marshal(box)
	if err := os.WriteFile(filepath.Join(dir, "outbox.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, client.Options{BaseURL: s.URL, Login: "worker1", StateDir: dir})
	_, err := c.Sync(context.Background())
	var gap *client.GapError
	if !errors.As(err, &gap) || gap.ServerLast != 0 || gap.QueueFirst != 3 || !errors.Is(err, client.ErrGap) {
		t.Fatalf("sync: %v, want a gap error", err)
	}
	if q := c.Queue(); len(q) != 1 || q[0].ID != 3 {
		t.Errorf("queue: %+v", q)
	}
}

// An app reinstalled under the same deviceId starts with an empty state: at login the
// server tells it where the device's queue stands, and its new mutations are numbered
// after that instead of being taken for re-sends of the old install's.
func TestReinstallUnderTheSameDeviceID(t *testing.T) {
	s := startServer(t)
	s.org(1)
	old := open(t, client.Options{BaseURL: s.URL, Login: "worker1", DeviceID: "phone-reused", StateDir: t.TempDir()})
	first := enqueueReports(t, old, 5)
	sync1(t, old)
	fresh := open(t, client.Options{BaseURL: s.URL, Login: "worker1", DeviceID: "phone-reused", StateDir: t.TempDir()})
	second := enqueueReports(t, fresh, 3) // queued offline, before the first login: ids 1..3
	rep := sync1(t, fresh)
	if rep.Applied != 3 || fresh.LastMutationID() != 8 {
		t.Errorf("reinstall: %+v, last id %d; want 3 applied as ids 6..8", rep, fresh.LastMutationID())
	}
	sameSet(t, "server incidents", keys(s.incidents()), append(first, second...))
}

// A photo queued offline is uploaded before the report that names it, in chunks; when
// the connection drops mid-upload the next Sync resumes where the server stopped.
func TestAttachmentQueueResumes(t *testing.T) {
	s := startServer(t)
	s.org(1)
	photo := make([]byte, 3*client.ChunkSize+1000)
	for i := range photo {
		photo[i] = byte(i * 7)
	}
	copy(photo, []byte{0xff, 0xd8, 0xff})
	// Lose the answer to the second chunk: the server stored it, the client does not know.
	tr := &flaky{fail: func(path string, n int) bool { return n == 3 && strings.HasPrefix(path, "/v1/attachments/") }}
	c := open(t, client.Options{BaseURL: s.URL, Login: "worker1", StateDir: t.TempDir(), HTTP: &http.Client{Transport: tr}})
	sha, err := c.AddAttachment(photo, "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	args := report(newID(t))
	args["photos"] = []string{sha}
	if _, err := c.Enqueue("incident.report", args); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(context.Background()); err == nil {
		t.Fatal("sync with a lost answer succeeded")
	}
	if len(c.Attachments()) != 1 || len(c.Queue()) != 1 {
		t.Fatalf("after the failure: %d attachments, %d mutations queued", len(c.Attachments()), len(c.Queue()))
	}
	sync1(t, c)
	if len(c.Attachments()) != 0 || len(c.Queue()) != 0 {
		t.Errorf("after the resume: %d attachments, %d mutations queued", len(c.Attachments()), len(c.Queue()))
	}
	// First Sync: HEAD, chunk 1, chunk 2 (its answer lost). Second: HEAD says two
	// chunks are stored, then chunks 3 and 4. Restarting would send more.
	if n := tr.count("/v1/attachments/" + sha); n != 6 {
		t.Errorf("%d attachment requests, want 6 (resumed, not restarted)", n)
	}
	// The report names the photo, and the server serves it to the reporter.
	if got := s.download(t, "worker1", sha); !bytes.Equal(got, photo) {
		t.Errorf("downloaded %d bytes, want the %d uploaded", len(got), len(photo))
	}
}
