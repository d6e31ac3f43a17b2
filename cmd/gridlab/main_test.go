package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFiguresAreReadFromSummaries(t *testing.T) {
	summary := "fleet summary\n  devices:                     200\n  mutations enqueued:          2000\n  applied exactly once:        1999\n"
	if n := figure(summary, "mutations enqueued"); n != 2000 {
		t.Errorf("enqueued %d", n)
	}
	if n := figure(summary, "applied exactly once"); n != 1999 {
		t.Errorf("applied once %d", n)
	}
	if n := figure(summary, "lost"); n != -1 {
		t.Errorf("absent figure %d", n)
	}
	items, differed := rebuildFigures("rebuilt from 2476 incidents in 1.2s: 4012 counter documents, 3 differed from the live counters\ndiffered: a b c\n")
	if items != 2476 || differed != 3 {
		t.Errorf("rebuild %d %d", items, differed)
	}
	if items, differed := rebuildFigures("gridctl: 503"); items != -1 || differed != -1 {
		t.Errorf("no rebuild line: %d %d", items, differed)
	}
}

// The fleet's progress line is rewritten with \r; "run" may arrive split across writes.
func TestPhaseWatchSeesTheRunStart(t *testing.T) {
	var out bytes.Buffer
	w := newPhaseWatch(&out)
	for _, s := range []string{"\rsetup   0.5s", "  online 0/2 \rr", "un      0.0s"} {
		select {
		case <-w.run:
			t.Fatalf("run seen before %q", s)
		default:
		}
		w.Write([]byte(s))
	}
	select {
	case <-w.run:
	default:
		t.Fatal("run not seen")
	}
	w.Write([]byte("\rrun 1.0s")) // closing twice would panic
	if !strings.HasSuffix(out.String(), "\rrun 1.0s") {
		t.Errorf("output not passed on: %q", out.String())
	}
}

// A process is killed (SIGKILL, waited for) and started again with the same arguments,
// its output appended to one log.
func TestProcKillAndRestart(t *testing.T) {
	p := &proc{name: "sh", path: "/bin/sh", args: []string{"-c", "echo started; exec sleep 60"}, log: filepath.Join(t.TempDir(), "sh.log")}
	for round := range 2 {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		if err := p.start(); err == nil {
			t.Fatal("started twice")
		}
		if up, _ := p.running(); !up || p.pid() == 0 {
			t.Fatalf("round %d: not running", round)
		}
		for !strings.Contains(p.tail(10), strings.Repeat("started\n", round)+"started") {
			time.Sleep(10 * time.Millisecond)
		}
		done := make(chan struct{})
		go func() { p.kill(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("kill did not return")
		}
		if up, err := p.running(); up || err == nil {
			t.Fatalf("round %d: after kill: up %v, err %v", round, up, err)
		}
	}
	if got := strings.Count(p.tail(10), "started"); got != 2 {
		t.Errorf("log has %d starts: %q", got, p.tail(10))
	}
	err := waitTCP(context.Background(), p, "127.0.0.1:1", time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("waiting on a dead process: %v", err)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"chaos", "--devices", "0"}, {"soak", "--warmup", "20m"}, {"ferretdb"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}

func TestSamplerMedian(t *testing.T) {
	s := &sampler{}
	for i, rss := range []int64{100, 300, 200, 900, 400, 500, 600} {
		s.samples = append(s.samples, sample{at: time.Duration(i) * 10 * time.Second, rss: rss})
	}
	if m := s.median(0, 20*time.Second); m != 200 {
		t.Errorf("median of 100 300 200: %d", m)
	}
	if m := s.median(30*time.Second, 60*time.Second); m != 500 {
		t.Errorf("median of 900 400 500 600: %d", m)
	}
	if m := s.median(95*time.Second, 99*time.Second); m != 600 {
		t.Errorf("no sample in the window: %d, want the nearest (600)", m)
	}
}
