package main

// gridctl fleet: simulated handsets on a poor network against a running gridd, then a
// check that every one of them converged to the server's view.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	handset "github.com/gridkeeper/gridkeeper/mobile-api/client"
)

// Odds of the simulated network, per request, and how long converging may take.
const (
	pOffline       = 0.08 // fails before sending
	pLoseAnswer    = 0.12 // the server handled it, the answer never arrives
	pDuplicatePush = 0.10 // a push is sent twice
	convergeFor    = 2 * time.Minute
)

var (
	errSimOffline    = errors.New("simulated: offline")
	errSimLostAnswer = errors.New("simulated: answer lost after the server handled the request")
)

type fleetConfig struct {
	devices, reports     int
	duration             time.Duration
	stateDir             string
	keep, calm           bool
	interval, ramp       time.Duration
	seed                 uint64
	gridPrefix, password string
}

func parseFleetFlags(args []string, stderr io.Writer) (fleetConfig, error) {
	var cfg fleetConfig
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "gridctl fleet: simulate handsets on a flaky network against gridd, then check they converged\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.devices, "devices", 200, "simulated handsets")
	fs.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long the handsets work before converging")
	fs.IntVar(&cfg.reports, "reports", 10, "incident reports per handset")
	fs.StringVar(&cfg.stateDir, "state-dir", "", "where the handsets keep their files (default a temp dir, removed at the end)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temp state dir")
	fs.BoolVar(&cfg.calm, "calm", false, "a good network: no offline periods, no lost answers, no duplicate pushes (a load test: any error is one)")
	fs.DurationVar(&cfg.ramp, "ramp", 0, "handsets start working spread over this time (a shift starting, not all at one second)")
	fs.DurationVar(&cfg.interval, "interval", 0, "mean time between two syncs of a handset (default a tenth to a fortieth of --duration)")
	fs.Uint64Var(&cfg.seed, "seed", uint64(time.Now().UnixNano()), "random seed")
	fs.StringVar(&cfg.gridPrefix, "grid-prefix", "", "only use grids whose code starts with this")
	fs.StringVar(&cfg.password, "password", "fleet-password-1", "password of the fleet-NNN users")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.devices < 1 || cfg.reports < 0 || cfg.duration <= 0 || cfg.interval < 0 || cfg.ramp < 0 || cfg.ramp >= cfg.duration || fs.NArg() > 0 {
		return cfg, errors.New("usage: gridctl fleet [--devices N] [--duration D] [--reports N] [--interval D] [--ramp D] [--calm] [--state-dir DIR] [--keep] [--seed N] [--grid-prefix CODE] [--password PW]")
	}
	return cfg, nil
}

// fleetStats are the counters of a run, safe for concurrent use.
type fleetStats struct {
	enqueued, applied, syncs, syncErrors, connRefused atomic.Int64
	lostAnswers, offlineFailures, duplicatePushes     atomic.Int64
	online                                            atomic.Int64
	phase                                             atomic.Pointer[string]

	mu          sync.Mutex
	otherErrors map[string]int // errors neither simulated nor a refused connection
}

func (s *fleetStats) countSync(rep handset.Report, err error) {
	s.syncs.Add(1)
	s.applied.Add(int64(rep.Applied))
	switch {
	case err == nil:
		return
	case errors.Is(err, errSimOffline), errors.Is(err, errSimLostAnswer):
	case errors.Is(err, syscall.ECONNREFUSED):
		s.connRefused.Add(1)
	default:
		s.other(err.Error())
	}
	s.syncErrors.Add(1)
}

// other counts an unexpected error by its message.
func (s *fleetStats) other(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.otherErrors[msg[:min(len(msg), 160)]]++
}

// flakyTransport is a handset's network: offline periods, requests that fail before
// leaving, answers lost after the server acted, pushes sent twice. calm turns it all
// off. It serves one Sync at a time (the client serializes them), so rng needs no lock.
type flakyTransport struct {
	base          http.RoundTripper
	stats         *fleetStats
	offline, calm atomic.Bool
	rng           *rand.Rand
}

func (t *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.calm.Load() {
		return t.base.RoundTrip(req)
	}
	if t.offline.Load() || t.rng.Float64() < pOffline {
		if req.Body != nil {
			req.Body.Close()
		}
		t.stats.offlineFailures.Add(1)
		return nil, errSimOffline
	}
	if strings.HasSuffix(req.URL.Path, "/sync/push") && req.GetBody != nil && t.rng.Float64() < pDuplicatePush {
		// A copy races the original, like a retry sent while the first is in flight; it
		// runs to its end even when the original's caller gives up.
		if body, err := req.GetBody(); err == nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), 30*time.Second)
			dup := req.Clone(ctx)
			dup.Body = body
			t.stats.duplicatePushes.Add(1)
			go func() {
				defer cancel()
				if resp, err := t.base.RoundTrip(dup); err == nil {
					if resp.StatusCode != http.StatusOK {
						t.stats.other(fmt.Sprintf("duplicate push answered HTTP %d", resp.StatusCode))
					}
					discard(resp)
				}
			}()
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || t.rng.Float64() >= pLoseAnswer {
		return resp, err
	}
	discard(resp)
	t.stats.lostAnswers.Add(1)
	return nil, errSimLostAnswer
}

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// device is one simulated handset and what it reported.
type device struct {
	login, grid string
	hs          *handset.Client
	tr          *flakyTransport
	rng         *rand.Rand
	reported    []string // incident ids, in the order enqueued
	drainErr    error    // why converging failed
	problems    []string // what check found wrong
}

type fleetRun struct {
	cfg     fleetConfig
	admin   *client
	relogin func() error
	adminMu sync.RWMutex // relogin replaces the admin token under the write lock
	base    *http.Transport
	stats   *fleetStats
	lat     latencies
	devices []*device
	grids   []string
	moved   string // what the mid-run reassignment did
	moveErr error
	gridOf  sync.Map // incident id → its grid on the server, for every fleet report
}

// fleet simulates --devices handsets against gridd and checks that they converged. It
// returns an error, after printing the divergences, unless all did. relogin logs the
// admin in again when its session ends.
func fleet(c *client, args []string, relogin func() error, stdout, stderr io.Writer) error {
	cfg, err := parseFleetFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if cfg.stateDir == "" {
		if cfg.stateDir, err = os.MkdirTemp("", "gridctl-fleet-"); err != nil {
			return err
		}
		if !cfg.keep {
			defer os.RemoveAll(cfg.stateDir)
		}
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 64
	defer base.CloseIdleConnections()
	f := &fleetRun{cfg: cfg, admin: c, relogin: relogin, base: base, stats: &fleetStats{otherErrors: map[string]int{}}}
	f.setPhase("setup")
	fmt.Fprintf(stdout, "fleet: %d handsets, %d reports each, %s, seed %d, state in %s\n",
		cfg.devices, cfg.reports, cfg.duration, cfg.seed, cfg.stateDir)
	if err := f.pickGrids(); err != nil {
		return err
	}
	if err := f.openDevices(); err != nil {
		return err
	}
	if err := f.createUsers(); err != nil {
		return err
	}
	stopProgress := f.showProgress(stderr)
	f.simulate()
	f.converge()
	stopProgress()
	if problems := f.check(stdout); len(problems) > 0 {
		fmt.Fprintln(stdout, "divergences:")
		for _, p := range problems {
			fmt.Fprintln(stdout, "  "+p)
		}
		return fmt.Errorf("fleet: %d problems, the handsets did not all converge", len(problems))
	}
	return nil
}

// call is an admin API call, retried while gridd is unreachable or restarting; a 401
// (the admin session replaced or expired) logs in again.
func (f *fleetRun) call(method, path string, body, out any) error {
	var err error
	for attempt := range 8 {
		f.adminMu.RLock()
		err = f.admin.do(method, path, body, out)
		f.adminMu.RUnlock()
		switch st := statusOf(err); {
		case err == nil:
			return nil
		case st == http.StatusUnauthorized && f.relogin != nil:
			f.adminMu.Lock()
			if lerr := f.relogin(); lerr != nil {
				err = lerr
			}
			f.adminMu.Unlock()
		case st >= 400 && st < 500 && st != http.StatusTooManyRequests:
			return err
		}
		time.Sleep(backoff(attempt))
	}
	return err
}

// statusOf reads the HTTP status of an error of client.do ("404 not_found: …"); 0
// when the server was not reached.
func statusOf(err error) int {
	var st int
	if err != nil {
		_, _ = fmt.Sscanf(err.Error(), "%d ", &st)
	}
	return st
}

func backoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<min(attempt, 10), 5*time.Second)
}

// pickGrids lists the grids (level 1) of the admin's subtree under --grid-prefix.
func (f *fleetRun) pickGrids() error {
	var r struct {
		Units []struct {
			ID    string
			Level int
		}
	}
	if err := f.call("GET", "/v1/units", nil, &r); err != nil {
		return fmt.Errorf("list units: %w", err)
	}
	for _, u := range r.Units {
		if u.Level == 1 && strings.HasPrefix(u.ID, f.cfg.gridPrefix) {
			f.grids = append(f.grids, u.ID)
		}
	}
	if len(f.grids) == 0 {
		return fmt.Errorf("no grid under %q in the admin's area", f.cfg.gridPrefix)
	}
	sort.Strings(f.grids)
	return nil
}

// openDevices gives fleet-001…fleet-N a grid, round-robin, and opens their clients,
// each on its own state dir and flaky network.
func (f *fleetRun) openDevices() error {
	for i := range f.cfg.devices {
		d := &device{login: fmt.Sprintf("fleet-%03d", i+1), grid: f.grids[i%len(f.grids)],
			rng: rand.New(rand.NewPCG(f.cfg.seed, uint64(i)))}
		d.tr = &flakyTransport{base: timedTransport{f.base, &f.lat}, stats: f.stats, rng: rand.New(rand.NewPCG(f.cfg.seed, uint64(i)|1<<32))}
		d.tr.calm.Store(f.cfg.calm)
		var err error
		if d.hs, err = f.openHandset(d.login, filepath.Join(f.cfg.stateDir, d.login), d.tr); err != nil {
			return err
		}
		f.devices = append(f.devices, d)
	}
	return nil
}

func (f *fleetRun) openHandset(login, dir string, rt http.RoundTripper) (*handset.Client, error) {
	return handset.Open(handset.Options{BaseURL: f.admin.base, Login: login, Password: f.cfg.password, StateDir: dir,
		Platform: "android", AppVersion: "gridctl-fleet", HTTP: &http.Client{Transport: rt, Timeout: 30 * time.Second}})
}

// createUsers makes the fleet users, grid managers of their grids. A user left by an
// earlier run is reused and moved back to its grid (moving a user to the unit it is in
// changes nothing).
func (f *fleetRun) createUsers() error {
	return forEach(f.devices, 8, func(d *device) error {
		err := f.call("POST", "/v1/admin/users", map[string]any{"login": d.login, "name": "Fleet handset " + d.login,
			"roles": []string{"grid_manager"}, "unitId": d.grid, "password": f.cfg.password}, nil)
		if statusOf(err) == http.StatusConflict && strings.Contains(err.Error(), "already_exists") {
			err = f.call("POST", "/v1/admin/users/"+d.login+"/move", map[string]string{"unitId": d.grid}, nil)
		}
		if err != nil {
			return fmt.Errorf("user %s: %w", d.login, err)
		}
		return nil
	})
}

// simulate runs every handset for --duration, and reassigns one of them halfway.
func (f *fleetRun) simulate() {
	f.setPhase("run")
	start := time.Now()
	f.lat.on.Store(true)
	defer f.lat.on.Store(false)
	var wg sync.WaitGroup
	for _, d := range f.devices {
		wg.Go(func() { f.work(d, start) })
	}
	wg.Go(func() { f.reassignMidRun(start) })
	wg.Wait()
}

// work is one handset's day: reports at random times, offline periods, and a sync now
// and then when online. Sync errors are expected; a later sync retries.
func (f *fleetRun) work(d *device, start time.Time) {
	dur := f.cfg.duration
	due := make([]time.Duration, f.cfg.reports)
	for i := range due {
		due[i] = time.Duration(d.rng.Int64N(int64(dur)))
	}
	slices.Sort(due)
	end := start.Add(dur)
	if f.cfg.ramp > 0 {
		time.Sleep(time.Duration(d.rng.Int64N(int64(f.cfg.ramp))))
	}
	f.stats.online.Add(1)
	var offlineUntil time.Time
	for {
		now := time.Now()
		for len(due) > 0 && !start.Add(due[0]).After(now) {
			f.enqueueReport(d)
			due = due[1:]
		}
		if !now.Before(end) {
			break
		}
		switch offline := d.tr.offline.Load(); {
		case f.cfg.calm:
		case !offline && d.rng.Float64() < 0.12:
			d.tr.offline.Store(true)
			f.stats.online.Add(-1)
			offlineUntil = now.Add(between(d.rng, dur/40, dur/8))
		case offline && now.After(offlineUntil):
			d.tr.offline.Store(false)
			f.stats.online.Add(1)
		}
		if !d.tr.offline.Load() && d.rng.Float64() < 0.6 {
			f.sync(d)
		}
		pause := between(d.rng, dur/40, dur/10)
		if f.cfg.interval > 0 {
			pause = between(d.rng, f.cfg.interval/2, f.cfg.interval*3/2)
		}
		time.Sleep(min(pause, time.Until(end)+time.Millisecond))
	}
	if !d.tr.offline.Load() {
		f.stats.online.Add(-1)
	}
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	lo = max(lo, 10*time.Millisecond)
	return lo + time.Duration(rng.Int64N(int64(max(hi-lo, 1))))
}

// enqueueReport queues an incident.report at a spot near 38.0 N 114.5 E.
func (f *fleetRun) enqueueReport(d *device) {
	id := uuid.Must(uuid.NewV7()).String()
	args := map[string]any{"incidentId": id, "category": "place.sanitation",
		"description": fmt.Sprintf("垃圾堆放未清运 (%s report %d)", d.login, len(d.reported)+1),
		"location":    map[string]float64{"lat": 38.0 + (d.rng.Float64()-0.5)*0.02, "lng": 114.5 + (d.rng.Float64()-0.5)*0.02}}
	if _, err := d.hs.Enqueue("incident.report", args); err != nil {
		panic(err) // the queue is a local file: failing to write it is no network fault
	}
	d.reported = append(d.reported, id)
	f.stats.enqueued.Add(1)
}

// sync runs one Sync of a handset and counts what it did; its errors are expected.
func (f *fleetRun) sync(d *device) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	f.stats.countSync(d.hs.Sync(ctx))
}

// reassignMidRun moves one fleet user to the next grid halfway through the run,
// retrying while gridd is unreachable.
func (f *fleetRun) reassignMidRun(start time.Time) {
	if len(f.grids) < 2 {
		f.moved = "none (one grid only)"
		return
	}
	time.Sleep(time.Until(start.Add(f.cfg.duration / 2)))
	d := f.devices[rand.New(rand.NewPCG(f.cfg.seed, 1<<40)).IntN(len(f.devices))]
	to := f.grids[(slices.Index(f.grids, d.grid)+1)%len(f.grids)]
	var err error
	for deadline := time.Now().Add(f.cfg.duration + time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if err = f.call("POST", "/v1/admin/users/"+d.login+"/move", map[string]string{"unitId": to}, nil); err == nil {
			f.moved = fmt.Sprintf("%s from %s to %s", d.login, d.grid, to)
			d.grid = to
			return
		}
		if st := statusOf(err); st >= 400 && st < 500 {
			break
		}
	}
	f.moved, f.moveErr = d.login+" failed", fmt.Errorf("reassigning %s to %s: %w", d.login, to, err)
}

// converge syncs every handset on a good network until its queue is empty and its
// last pull had nothing more; then again, round after round, until three rounds in a
// row in which no handset pulled anything: every replica then also holds what the others pushed
// last, and what the server changed on its own after them (the router passing items
// up, duplicate flags), which a real handset would learn on its next poke.
func (f *fleetRun) converge() {
	f.setPhase("converge")
	for _, d := range f.devices {
		d.tr.calm.Store(true)
		d.tr.offline.Store(false)
	}
	deadline := time.Now().Add(convergeFor)
	quiet := 0
	for round := 0; round < 40 && time.Now().Before(deadline); round++ {
		var pulled atomic.Int64
		_ = forEach(f.devices, 32, func(d *device) error {
			d.drainErr = syncUntilDone(d.hs, deadline, func(r handset.Report, err error) {
				pulled.Add(int64(r.Pulled))
				f.stats.countSync(r, err)
			})
			return nil
		})
		if round > 0 && pulled.Load() == 0 {
			// The server's own follow-ups (the router, the deadlines) may still be on
			// their way on a loaded machine: quiet three rounds in a row.
			if quiet++; quiet == 3 {
				return
			}
		} else {
			quiet = 0
		}
		time.Sleep(time.Second) // let the server's own follow-ups land
	}
}

// syncUntilDone syncs with backoff until a sync succeeds with the queue empty (a
// successful sync ends with a pull that has nothing more).
func syncUntilDone(hs *handset.Client, deadline time.Time, count func(handset.Report, error)) error {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		rep, err := hs.Sync(ctx)
		cancel()
		count(rep, err)
		if err == nil && len(hs.Queue()) == 0 {
			return nil
		} else if err == nil {
			err = fmt.Errorf("%d mutations still queued", len(hs.Queue()))
		}
		var ae *handset.APIError
		if errors.As(err, &ae) && ae.Body.Code == "invalid_credentials" {
			return fmt.Errorf("login refused (a user of an earlier run with another --password?): %w", err)
		}
		if time.Now().Add(backoff(attempt)).After(deadline) {
			return fmt.Errorf("not converged in time: %w", err)
		}
		time.Sleep(backoff(attempt))
	}
}

// tally counts what check found.
type tally struct {
	appliedOnce, duplicates, lost, rejected, converged, replicated atomic.Int64
}

func (d *device) problem(format string, a ...any) {
	d.problems = append(d.problems, d.login+": "+fmt.Sprintf(format, a...))
}

// check verifies the run (each report applied exactly once, nothing rejected, each
// replica equal to a fresh first sync of its user), prints the summary and returns the
// problems.
func (f *fleetRun) check(stdout io.Writer) (problems []string) {
	f.setPhase("check")
	var t tally
	_ = forEach(f.devices, 8, func(d *device) error { f.checkAppliedOnce(d, &t); return nil })
	_ = forEach(f.devices, 8, func(d *device) error {
		if d.drainErr != nil {
			d.problem("%v", d.drainErr)
			return nil
		}
		diffs, err := f.compareWithFreshSync(d, &t)
		for _, p := range diffs {
			d.problem("(grid %s) %s", d.grid, p)
		}
		switch {
		case err != nil:
			d.problem("verification sync: %v", err)
		case len(diffs) == 0:
			t.converged.Add(1)
		}
		return nil
	})
	for _, d := range f.devices {
		problems = append(problems, d.problems...)
	}
	if f.moveErr != nil {
		problems = append(problems, f.moveErr.Error())
	}
	if n, once := f.stats.enqueued.Load(), t.appliedOnce.Load(); n != once {
		problems = append(problems, fmt.Sprintf("%d mutations enqueued, %d applied exactly once", n, once))
	}
	if n := f.lat.errors(); f.cfg.calm && (n > 0 || f.stats.syncErrors.Load() > 0) {
		problems = append(problems, fmt.Sprintf("on a good network: %d requests failed, %d syncs failed", n, f.stats.syncErrors.Load()))
	}
	f.printSummary(stdout, &t)
	return problems
}

// checkAppliedOnce reads, as admin, every incident the handset reported: each must
// exist with one "report" in its history. Any rejected mutation is a problem too (a
// report applied twice would be rejected as already_exists).
func (f *fleetRun) checkAppliedOnce(d *device, t *tally) {
	for _, id := range d.reported {
		var inc struct {
			GridID  string
			History []struct{ Action string }
		}
		err := f.call("GET", "/v1/incidents/"+id, nil, &inc)
		if err == nil {
			f.gridOf.Store(id, inc.GridID)
		}
		n := 0
		for _, h := range inc.History {
			if h.Action == "report" {
				n++
			}
		}
		switch {
		case statusOf(err) == http.StatusNotFound:
			t.lost.Add(1)
			d.problem("incident %s is not on the server (lost)", id)
		case err != nil:
			d.problem("incident %s: %v", id, err)
		case n == 1:
			t.appliedOnce.Add(1)
		default:
			t.duplicates.Add(1)
			d.problem("incident %s has %d report actions", id, n)
		}
	}
	for _, o := range d.hs.Rejected() {
		t.rejected.Add(1)
		if o.Error.Code == "already_exists" {
			t.duplicates.Add(1)
		}
		d.problem("mutation %d rejected: %s %s", o.Mutation.ID, o.Error.Code, o.Error.Message)
	}
}

// compareWithFreshSync logs in as the handset's user on a new device (new state dir
// and device id, good network), syncs from scratch, and compares the incidents.
func (f *fleetRun) compareWithFreshSync(d *device, t *tally) ([]string, error) {
	dir := filepath.Join(f.cfg.stateDir, "verify", d.login)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	v, err := f.openHandset(d.login, dir, f.base)
	if err != nil {
		return nil, err
	}
	if err := syncUntilDone(v, time.Now().Add(30*time.Second), func(handset.Report, error) {}); err != nil {
		return nil, err
	}
	mine, fresh := d.hs.Replica("incidents"), v.Replica("incidents")
	t.replicated.Add(int64(len(mine)))
	diffs := compareReplicas(mine, fresh)
	// The fresh sync is the server's view; check it against where the fleet's reports
	// are: all of those in the user's grid, none of the others.
	f.gridOf.Range(func(id, grid any) bool {
		if _, ok := fresh[id.(string)]; ok != (grid == d.grid) {
			diffs = append(diffs, fmt.Sprintf("incident %s of grid %s: in a fresh sync of grid %s = %v", id, grid, d.grid, ok))
		}
		return true
	})
	return diffs, nil
}

// compareReplicas lists how a handset's replica differs from the server's view (ids
// and versions), sorted; nil when they are equal.
func compareReplicas(device, server map[string]json.RawMessage) []string {
	var out []string
	for id, doc := range server {
		mine, ok := device[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("missing incident %s (server version %d)", id, versionOf(doc)))
		case versionOf(mine) != versionOf(doc):
			out = append(out, fmt.Sprintf("incident %s: version %d on the handset, %d on the server", id, versionOf(mine), versionOf(doc)))
		}
	}
	for id, doc := range device {
		if _, ok := server[id]; !ok {
			out = append(out, fmt.Sprintf("extra incident %s (version %d), not in the user's scope on the server", id, versionOf(doc)))
		}
	}
	sort.Strings(out)
	return out
}

func versionOf(doc json.RawMessage) int64 {
	var v struct{ Version int64 }
	if json.Unmarshal(doc, &v) != nil {
		return -1
	}
	return v.Version
}

func (f *fleetRun) printSummary(w io.Writer, t *tally) {
	s, n := f.stats, int64(len(f.devices))
	fmt.Fprintf(w, `fleet summary
  devices:                     %d
  mutations enqueued:          %d
  applied (outcomes heard):    %d
  applied exactly once:        %d
  duplicates detected:         %d
  lost:                        %d
  rejected:                    %d
  devices converged:           %d
  devices diverged:            %d
  incidents in replicas:       %d
  syncs:                       %d (%d failed)
  lost answers simulated:      %d
  offline failures simulated:  %d
  duplicate pushes simulated:  %d
  restarts noticed:            %d (sync errors with connection refused)
  reassigned:                  %s
`, n, s.enqueued.Load(), s.applied.Load(), t.appliedOnce.Load(), t.duplicates.Load(), t.lost.Load(), t.rejected.Load(),
		t.converged.Load(), n-t.converged.Load(), t.replicated.Load(), s.syncs.Load(), s.syncErrors.Load(), s.lostAnswers.Load(),
		s.offlineFailures.Load(), s.duplicatePushes.Load(), s.connRefused.Load(), f.moved)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, msg := range slices.Sorted(maps.Keys(s.otherErrors)) {
		fmt.Fprintf(w, "  other error:                 %d× %s\n", s.otherErrors[msg], msg)
	}
	f.lat.print(w)
}

// forEach runs fn on every item, at most n at a time, and returns the first error.
func forEach[T any](items []T, n int, fn func(T) error) error {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(it); err != nil {
				once.Do(func() { first = err })
			}
		})
	}
	wg.Wait()
	return first
}

func (f *fleetRun) setPhase(p string) { f.stats.phase.Store(&p) }

// showProgress rewrites one status line on w every half second until the returned
// function is called.
func (f *fleetRun) showProgress(w io.Writer) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			queued := 0
			for _, d := range f.devices {
				queued += len(d.hs.Queue())
			}
			s := f.stats
			fmt.Fprintf(w, "\r%-8s %5.1fs  online %d/%d  enqueued %d  queued %d  applied %d  syncs %d  errors %d  ",
				*s.phase.Load(), time.Since(start).Seconds(), s.online.Load(), len(f.devices),
				s.enqueued.Load(), queued, s.applied.Load(), s.syncs.Load(), s.syncErrors.Load())
			select {
			case <-stop:
				fmt.Fprintln(w)
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(stop); <-done }
}
