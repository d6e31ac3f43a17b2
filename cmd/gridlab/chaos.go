package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gridkeeper/gridkeeper/services/demo"
)

// chaos starts NATS, FerretDB and gridd as three processes with the demo city, runs a
// fleet of handsets on a flaky network against gridd, and during the run kills each
// process with SIGKILL and starts it again: gridd, then NATS, then FerretDB. The fleet
// then converges and checks that every report was applied exactly once and every
// handset holds the server's view; a statistics rebuild checks that the dashboard's
// counters counted each change once. It prints the counts and fails if any is off.
func chaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin", "directory of gridd, gridctl and nats-server")
	dir := fs.String("dir", "", "working directory (default a temp dir, removed at the end)")
	keep := fs.Bool("keep", false, "keep the temp dir and its logs")
	devices := fs.Int("devices", 200, "simulated handsets")
	duration := fs.Duration("duration", 150*time.Second, "how long the handsets work (the kills fall at 15%, 40% and 65% of it)")
	reports := fs.Int("reports", 10, "reports per handset")
	down := fs.Duration("down", 3*time.Second, "how long each killed process stays down")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "the fleet's random seed")
	kill := fs.String("kill", "gridd,nats,ferretdb", "which processes to kill, in this order")
	if err := fs.Parse(args); err != nil {
		return err
	}
	victims := strings.Split(*kill, ",")
	if fs.NArg() > 0 || *devices < 1 || *duration < 10*time.Second || len(victims) > 3 {
		fmt.Fprintln(stderr, "usage: gridlab chaos [--devices N] [--duration D ≥ 10s] [--reports N] [--down D] [--kill gridd,nats,ferretdb] [--bin DIR] [--dir DIR] [--keep] [--seed N]")
		return errUsage
	}
	wd, cleanup, err := labDir(*dir, "chaos", *keep, stdout)
	if err != nil {
		return err
	}
	defer cleanup()
	l, err := newLab(wd, *bin, true)
	if err != nil {
		return err
	}
	defer l.stop()
	fmt.Fprintf(stdout, "chaos: nats-server %s, ferretdb %s, gridd %s; logs in %s\n", l.natsAddr, l.dbAddr, l.base, wd)
	t0 := time.Now()
	if err := l.start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chaos: all three up with the demo city in %.1fs\n", time.Since(t0).Seconds())

	// The fleet runs as gridctl does for a user; its progress line says when the
	// handsets start working, and the kills are timed from then.
	fl, err := l.startFleet(ctx, stdout, stderr, "--devices", strconv.Itoa(*devices),
		"--duration", duration.String(), "--reports", strconv.Itoa(*reports), "--seed", strconv.FormatUint(*seed, 10))
	if err != nil {
		return err
	}
	runStart := fl.run

	var timeline []string
	for i, name := range victims {
		victim, restart := l.gridd, l.startGridd
		switch name {
		case "gridd":
		case "nats":
			victim, restart = l.nats, l.startNATS
		case "ferretdb":
			victim, restart = l.ferret, l.startFerret
		default:
			return fmt.Errorf("--kill: no process %q (gridd, nats, ferretdb)", name)
		}
		at := []float64{0.15, 0.40, 0.65}[i]
		select {
		case <-time.After(time.Until(runStart.Add(time.Duration(at * float64(*duration))))):
		case <-ctx.Done():
			return ctx.Err()
		}
		line, err := killAndRestart(ctx, l, victim, restart, *down, time.Since(runStart))
		fmt.Fprintln(stderr)
		fmt.Fprintln(stdout, "chaos: "+line)
		timeline = append(timeline, line)
		if err != nil {
			return err
		}
	}
	fleetErr := <-fl.done

	// Every change counted once: a rebuild from the stored incidents must find the
	// live counters equal (after the projector has caught up with the last changes).
	time.Sleep(5 * time.Second)
	rebuilt, rerr := l.gridctl(ctx, io.Discard, stderr, "stats", "rebuild")
	incidents, differed := rebuildFigures(rebuilt)

	summary := fl.out.String()
	enqueued := figure(summary, "mutations enqueued")
	fmt.Fprintf(stdout, `chaos summary
  killed and restarted:        %s
  handsets:                    %d
  reports enqueued:            %d
  applied exactly once:        %d
  duplicates:                  %d
  lost:                        %d
  rejected:                    %d
  handsets converged:          %d of %d
  incidents on the server:     %d (demo %d + fleet %d)
  statistics counters off:     %d (after a rebuild from the incidents)
`, strings.Join(timeline, "\n                               "), *devices, enqueued, figure(summary, "applied exactly once"),
		figure(summary, "duplicates detected"), figure(summary, "lost"), figure(summary, "rejected"),
		figure(summary, "devices converged"), *devices, incidents, demo.Incidents, enqueued, differed)

	var problems []string
	if fleetErr != nil {
		problems = append(problems, "the fleet did not converge: "+fleetErr.Error())
	}
	if rerr != nil {
		problems = append(problems, "statistics rebuild: "+rerr.Error())
	}
	if incidents != demo.Incidents+enqueued {
		problems = append(problems, fmt.Sprintf("%d incidents on the server, want %d", incidents, demo.Incidents+enqueued))
	}
	if differed != 0 {
		problems = append(problems, fmt.Sprintf("%d statistics counters differed from a rebuild", differed))
	}
	for _, p := range []*proc{l.gridd, l.nats, l.ferret} {
		if up, err := p.running(); !up {
			problems = append(problems, fmt.Sprintf("%s is not running at the end (%v)", p.name, err))
		}
	}
	if len(problems) > 0 {
		return errors.New("chaos failed:\n  " + strings.Join(problems, "\n  "))
	}
	fmt.Fprintln(stdout, "chaos: passed")
	return nil
}

// killAndRestart kills victim with SIGKILL, leaves it down for down, starts it again
// and waits until gridd is ready; it says what happened and how long gridd was not
// ready.
func killAndRestart(ctx context.Context, l *lab, victim *proc, restart func(context.Context) error, down, at time.Duration) (string, error) {
	pid := victim.pid()
	killed := time.Now()
	victim.kill()
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if err := restart(ctx); err != nil {
		return fmt.Sprintf("%s (pid %d) killed at %.0fs, did not come back", victim.name, pid, at.Seconds()), err
	}
	if err := waitReady(ctx, l.gridd, l.base, 3*time.Minute); err != nil {
		return fmt.Sprintf("%s (pid %d) killed at %.0fs, gridd not ready again", victim.name, pid, at.Seconds()), err
	}
	return fmt.Sprintf("%s (pid %d) killed at %.0fs, down %s, gridd ready again %.1fs after the kill",
		victim.name, pid, at.Seconds(), down, time.Since(killed).Seconds()), nil
}

// rebuildFigures reads gridctl stats rebuild's line: "rebuilt from N incidents in …:
// M counter documents, D differed from the live counters"; -1 when absent.
func rebuildFigures(out string) (incidents, differed int) {
	m := regexp.MustCompile(`rebuilt from (\d+) incidents .* (\d+) differed`).FindStringSubmatch(out)
	if m == nil {
		return -1, -1
	}
	incidents, _ = strconv.Atoi(m[1])
	differed, _ = strconv.Atoi(m[2])
	return incidents, differed
}
