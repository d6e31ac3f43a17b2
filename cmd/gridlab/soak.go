package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridkeeper/gridkeeper/services/demo"
)

// soak runs gridd as a newcomer does (embedded FerretDB and NATS, the demo city),
// adds a community of grids for the handsets, and runs a fleet on a good network for
// a long time. It samples gridd's resident memory and goroutines every few seconds and
// prints them beside the fleet's latency per endpoint. It fails on any failed request,
// on resident memory growing more than --max-growth between the end of the warm-up and
// the end of the run, or on goroutines left over when the load is gone.
func soak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin", "directory of gridd and gridctl")
	dir := fs.String("dir", "", "working directory (default a temp dir, removed at the end)")
	keep := fs.Bool("keep", false, "keep the temp dir and its logs")
	devices := fs.Int("devices", 500, "simulated handsets")
	duration := fs.Duration("duration", 10*time.Minute, "how long the handsets work")
	warmup := fs.Duration("warmup", 2*time.Minute, "the start of the run after which memory should stop growing")
	interval := fs.Duration("interval", 10*time.Second, "mean time between two syncs of a handset")
	reports := fs.Int("reports", 10, "reports per handset over the run")
	grids := fs.Int("grids", 50, "grids made for the handsets (in a new community of the demo)")
	every := fs.Duration("sample", 5*time.Second, "how often memory and goroutines are read")
	maxGrowth := fs.Float64("max-growth", 0.10, "largest resident memory growth after the warm-up (0.10 = 10%)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "the fleet's random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *devices < 1 || *grids < 1 || *grids > 999 || *warmup >= *duration {
		fmt.Fprintln(stderr, "usage: gridlab soak [--devices N] [--duration D] [--warmup D < duration] [--interval D] [--reports N] [--grids 1..999] [--bin DIR] [--dir DIR] [--keep] [--seed N]")
		return errUsage
	}
	wd, cleanup, err := labDir(*dir, "soak", *keep, stdout)
	if err != nil {
		return err
	}
	defer cleanup()
	l, err := newLab(wd, *bin, false)
	if err != nil {
		return err
	}
	defer l.stop()
	if err := l.start(ctx); err != nil {
		return err
	}
	community := demo.Street + "900"
	fmt.Fprintf(stdout, "soak: gridd %s (embedded FerretDB and NATS, demo city); %d grids in community %s\n", l.base, *grids, community)
	if _, err := l.gridctl(ctx, io.Discard, stderr, "unit", "create", community, "压力测试社区"); err != nil {
		return err
	}
	for i := 1; i <= *grids; i++ {
		if _, err := l.gridctl(ctx, io.Discard, stderr, "unit", "create", fmt.Sprintf("%s%03d", community, i), fmt.Sprintf("压力测试网格%d", i)); err != nil {
			return err
		}
	}

	s := &sampler{pid: l.gridd.pid(), metrics: l.base + "/metrics"}
	idleBefore, err := s.read()
	if err != nil {
		return err
	}
	fl, err := l.startFleet(ctx, stdout, stderr, "--calm", "--devices", strconv.Itoa(*devices),
		"--duration", duration.String(), "--interval", interval.String(), "--ramp", (*warmup / 2).String(), "--reports", strconv.Itoa(*reports),
		"--grid-prefix", community, "--seed", strconv.FormatUint(*seed, 10))
	if err != nil {
		return err
	}
	runStart := fl.run
	stopSampling := s.every(*every, runStart)
	var fleetErr error
	select {
	case fleetErr = <-fl.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	stopSampling()
	// The last pushes' follow-ups, idle connections closing: wait for the goroutines
	// to settle (at most a minute).
	var idleAfter sample
	for i := 0; i < 12; i++ {
		time.Sleep(5 * time.Second)
		if idleAfter, err = s.read(); err != nil {
			return err
		}
		if idleAfter.goroutines <= idleGoroutines(idleBefore) {
			break
		}
	}

	// Resident memory swings with each collection: compare the medians of the minute
	// after the warm-up and of the run's last minute.
	warm, end := s.median(*warmup, *warmup+time.Minute), s.median(*duration-time.Minute, *duration)
	growth := float64(end-warm) / float64(warm)
	fmt.Fprintf(stdout, "soak samples (seconds into the run, resident memory, goroutines)\n")
	for i, x := range s.samples {
		if i%max(1, int(time.Minute / *every)) == 0 || i == len(s.samples)-1 {
			fmt.Fprintf(stdout, "  %6.0fs  %7.1f MiB  %6d\n", x.at.Seconds(), mib(x.rss), x.goroutines)
		}
	}
	fmt.Fprintf(stdout, `soak summary
  handsets:                    %d for %s, a sync every ~%s, %d reports each
  reports applied once:        %d of %d
  handsets converged:          %d
  resident memory:             %.1f MiB idle before, %.1f MiB in the minute after the %s warm-up, %.1f MiB in the last minute (%+.1f%%; medians), %.1f MiB idle after
  goroutines:                  %d idle before, %d–%d during the run, %d idle after
`, *devices, *duration, *interval, *reports, figure(fl.out.String(), "applied exactly once"), figure(fl.out.String(), "mutations enqueued"),
		figure(fl.out.String(), "devices converged"), mib(idleBefore.rss), mib(warm), *warmup, mib(end), 100*growth, mib(idleAfter.rss),
		idleBefore.goroutines, s.minG(), s.maxG(), idleAfter.goroutines)

	var problems []string
	if fleetErr != nil {
		problems = append(problems, "the fleet failed (see its summary): "+fleetErr.Error())
	}
	if growth > *maxGrowth {
		problems = append(problems, fmt.Sprintf("resident memory grew %.1f%% after the warm-up (limit %.0f%%)", 100*growth, 100**maxGrowth))
	}
	// Goroutines left once the load is gone: anything beyond a few means a leak.
	if idleAfter.goroutines > idleGoroutines(idleBefore) {
		problems = append(problems, fmt.Sprintf("%d goroutines idle after the run, %d before", idleAfter.goroutines, idleBefore.goroutines))
	}
	if len(problems) > 0 {
		return errors.New("soak failed:\n  " + strings.Join(problems, "\n  "))
	}
	fmt.Fprintln(stdout, "soak: passed")
	return nil
}

// idleGoroutines is the most goroutines gridd may have idle after the run, given
// those it had idle before: 10 % more and 10 besides.
func idleGoroutines(before sample) int { return before.goroutines + before.goroutines/10 + 10 }

type sample struct {
	at         time.Duration // since the run started
	rss        int64         // bytes
	goroutines int
}

// sampler reads a process's resident memory (/proc) and gridd's goroutine count
// (go_goroutines on /metrics).
type sampler struct {
	pid     int
	metrics string
	mu      sync.Mutex
	samples []sample
}

func (s *sampler) read() (sample, error) {
	var x sample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return x, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			x.rss = kb << 10
		}
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.metrics)
	if err != nil {
		return x, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, _ := strconv.ParseFloat(rest, 64)
			x.goroutines = int(f)
		}
	}
	if x.rss == 0 || x.goroutines == 0 {
		return x, errors.New("no VmRSS in /proc or no go_goroutines on /metrics")
	}
	return x, sc.Err()
}

// every samples until the returned function is called.
func (s *sampler) every(d time.Duration, start time.Time) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			if x, err := s.read(); err == nil {
				x.at = time.Since(start)
				s.mu.Lock()
				s.samples = append(s.samples, x)
				s.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(stop); <-done }
}

// median is the median resident memory of the samples taken from..to into the run
// (the nearest sample when none falls in it).
func (s *sampler) median(from, to time.Duration) int64 {
	var in []int64
	near, best := int64(0), time.Duration(1<<62)
	for _, y := range s.samples {
		if y.at >= from && y.at <= to {
			in = append(in, y.rss)
		}
		if d := max(y.at-to, to-y.at); d < best {
			near, best = y.rss, d
		}
	}
	if len(in) == 0 {
		return near
	}
	slices.Sort(in)
	return in[(len(in)-1)/2]
}

func (s *sampler) minG() int {
	m := 0
	for i, y := range s.samples {
		if i == 0 || y.goroutines < m {
			m = y.goroutines
		}
	}
	return m
}

func (s *sampler) maxG() int {
	m := 0
	for _, y := range s.samples {
		m = max(m, y.goroutines)
	}
	return m
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
