// Command gridlab runs Gridkeeper's fault and load experiments on one machine: it
// starts the real binaries (gridd, nats-server, FerretDB, gridctl) as separate
// processes, kills and restarts them, and prints what it measured.
//
//	gridlab chaos   kill -9 gridd, NATS and FerretDB under a fleet of handsets
//	gridlab soak    500 handsets on a good network for 10 minutes: latency, memory
//	gridlab ferretdb  FerretDB (SQLite) as a process of its own, for the above
//
// The binaries are taken from --bin (make lab builds them into ./bin).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const usage = `gridlab — fault and load experiments on one machine

Usage:
  gridlab chaos [--devices 200 --duration 150s …]    kill -9 gridd, NATS and FerretDB under a fleet
  gridlab soak [--devices 500 --duration 10m …]      a long run on a good network: latency, RSS, goroutines
  gridlab ferretdb --dir DIR --listen ADDR           FerretDB on SQLite as a process of its own

Each takes --help.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "chaos":
		err = chaos(ctx, args[1:], stdout, stderr)
	case "soak":
		err = soak(ctx, args[1:], stdout, stderr)
	case "ferretdb":
		err = serveFerret(ctx, args[1:], stderr)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "gridlab:", err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// labDir is the experiment's working directory: --dir, or a fresh temporary one
// removed at the end unless keep is set. The returned function cleans up.
func labDir(dir, name string, keep bool, stdout io.Writer) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	dir, err := os.MkdirTemp("", "gridlab-"+name+"-")
	if err != nil {
		return "", nil, err
	}
	if keep {
		return dir, func() { fmt.Fprintf(stdout, "files and logs kept in %s\n", dir) }, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// proc is one of the experiment's processes: started, killed and started again with
// the same arguments, its output appended to one log file.
type proc struct {
	name, path string
	args, env  []string
	log        string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how the last run ended
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.exited) {
		return fmt.Errorf("%s: already running", p.name)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	// The experiment's processes die with it, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// running says whether the process is up; when it is not, why it ended.
func (p *proc) running() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false, nil
	}
	if isClosed(p.exited) {
		return false, p.err
	}
	return true, nil
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() { p.signal(syscall.SIGKILL, 0) }

// stop sends SIGTERM and waits up to 30 s, then kills.
func (p *proc) stop() { p.signal(syscall.SIGTERM, 30*time.Second) }

func (p *proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil || isClosed(exited) {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-exited:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-exited
}

// tail is the end of the process's log, for error messages.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(ctx context.Context, p *proc, addr string, within time.Duration) error {
	return waitFor(ctx, p, within, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// waitReady waits until gridd at base answers /readyz with 200.
func waitReady(ctx context.Context, p *proc, base string, within time.Duration) error {
	hc := &http.Client{Timeout: 3 * time.Second}
	return waitFor(ctx, p, within, func() bool {
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitFor(ctx context.Context, p *proc, within time.Duration, ok func() bool) error {
	deadline := time.Now().Add(within)
	for !ok() {
		if up, err := p.running(); !up {
			return fmt.Errorf("%s exited (%v); its log ends:\n%s", p.name, err, p.tail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s; its log ends:\n%s", p.name, within, p.tail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// binary is the path of a program in dir, which must exist.
func binary(dir, name string) (string, error) {
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not found (make lab builds the binaries into ./bin): %w", path, err)
	}
	return path, nil
}

// phaseWatch is a writer that passes everything on to w and closes run when the
// fleet's progress line first says "run" (its handsets started working).
type phaseWatch struct {
	w    io.Writer
	run  chan struct{}
	once sync.Once
	last []byte
}

func newPhaseWatch(w io.Writer) *phaseWatch { return &phaseWatch{w: w, run: make(chan struct{})} }

func (p *phaseWatch) Write(b []byte) (int, error) {
	p.last = append(p.last, b...)
	if strings.Contains(string(p.last), "\rrun") {
		p.once.Do(func() { close(p.run) })
	}
	p.last = p.last[max(0, len(p.last)-8):]
	return p.w.Write(b)
}
