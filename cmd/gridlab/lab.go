package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/ferret"
)

// lab is one gridd on its own machine-like directory: with external set, NATS
// (nats-server) and the database (gridlab ferretdb) run as processes of their own and
// gridd connects to them; otherwise gridd embeds both, as a newcomer runs it.
type lab struct {
	dir, bin string
	base     string // gridd's URL
	nats     *proc  // nil unless external
	ferret   *proc  // nil unless external
	gridd    *proc
	natsAddr string
	dbAddr   string
}

func newLab(dir, bin string, external bool, extraEnv ...string) (*lab, error) {
	l := &lab{dir: dir, bin: bin}
	gridd, err := binary(bin, "gridd")
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	l.base = "http://" + httpAddr
	env := append([]string{"GRID_DATA_DIR=" + filepath.Join(dir, "gridd"), "GRID_HTTP_ADDR=" + httpAddr, "GRID_DEMO=true"}, extraEnv...)
	if external {
		natsBin, err := binary(bin, "nats-server")
		if err != nil {
			return nil, err
		}
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		if l.natsAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if l.dbAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		// As the embedded server: JetStream on disk, messages up to 8 MB.
		conf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, "server_name: lab-nats\nlisten: %q\nmax_payload: 8MB\njetstream {\n  store_dir: %q\n}\n",
			l.natsAddr, filepath.Join(dir, "nats")), 0o644); err != nil {
			return nil, err
		}
		l.nats = &proc{name: "nats-server", path: natsBin, log: filepath.Join(dir, "nats.log"), args: []string{"--config", conf}}
		l.ferret = &proc{name: "ferretdb", path: self, log: filepath.Join(dir, "ferretdb.log"),
			args: []string{"ferretdb", "--dir", filepath.Join(dir, "ferretdb"), "--listen", l.dbAddr}}
		// The appliers keep their partition in memory as they do on the embedded
		// FerretDB (auto would mean off for an external database); few operations at
		// once, as gridd does on its embedded FerretDB on SQLite (see ferret.PoolSize).
		env = append(env, "GRID_NATS_URL=nats://"+l.natsAddr, "GRID_MONGO_URI=mongodb://"+l.dbAddr+"/?maxPoolSize="+strconv.Itoa(ferret.PoolSize), "GRID_PRELOAD=on")
	}
	l.gridd = &proc{name: "gridd", path: gridd, env: env, log: filepath.Join(dir, "gridd.log")}
	return l, nil
}

// start starts what is not running, in order, each when the one before is ready.
func (l *lab) start(ctx context.Context) error {
	if l.nats != nil {
		if err := l.startNATS(ctx); err != nil {
			return err
		}
		if err := l.startFerret(ctx); err != nil {
			return err
		}
	}
	return l.startGridd(ctx)
}

func (l *lab) startNATS(ctx context.Context) error {
	if err := l.nats.start(); err != nil {
		return err
	}
	return waitTCP(ctx, l.nats, l.natsAddr, 60*time.Second)
}

func (l *lab) startFerret(ctx context.Context) error {
	if err := l.ferret.start(); err != nil {
		return err
	}
	return waitTCP(ctx, l.ferret, l.dbAddr, 60*time.Second)
}

func (l *lab) startGridd(ctx context.Context) error {
	if err := l.gridd.start(); err != nil {
		return err
	}
	return waitReady(ctx, l.gridd, l.base, 3*time.Minute)
}

// stop ends every process, gridd first.
func (l *lab) stop() {
	for _, p := range []*proc{l.gridd, l.ferret, l.nats} {
		if p != nil {
			p.stop()
		}
	}
}

// gridctl runs gridctl against the lab's gridd as the demo admin and returns its
// standard output; stdout and stderr are also copied to the writers given.
func (l *lab) gridctl(ctx context.Context, stdout, stderr io.Writer, args ...string) (string, error) {
	path, err := binary(l.bin, "gridctl")
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, append([]string{"--url", l.base, "--login", "admin"}, args...)...)
	cmd.Stdout = io.MultiWriter(&out, stdout)
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("gridctl %v: %w", args, err)
	}
	return out.String(), err
}

// figure reads "label: N" from a fleet summary; -1 when absent.
func figure(summary, label string) int {
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(label) + `:\s+(\d+)`).FindStringSubmatch(summary)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// fleet is a gridctl fleet running against the lab's gridd.
type fleet struct {
	out  bytes.Buffer // its standard output: the summary
	done chan error   // its end
	run  time.Time    // when its handsets started working
}

// startFleet runs gridctl fleet with args and returns once its progress line says the
// handsets started working (so kills and samples are timed from the run itself).
func (l *lab) startFleet(ctx context.Context, stdout, stderr io.Writer, args ...string) (*fleet, error) {
	f := &fleet{done: make(chan error, 1)}
	watch := newPhaseWatch(stderr)
	go func() {
		_, err := l.gridctl(ctx, io.MultiWriter(&f.out, stdout), watch, append([]string{"fleet"}, args...)...)
		f.done <- err
	}()
	select {
	case <-watch.run:
		f.run = time.Now()
		return f, nil
	case err := <-f.done:
		return nil, fmt.Errorf("the fleet ended before its run: %v", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
