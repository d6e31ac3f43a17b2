// Command gridd is the Gridkeeper server: API, appliers and consumers in one binary,
// each part switchable by GRID_ROLES so several instances can split the work. With no
// configuration it runs on an embedded FerretDB and an embedded NATS in ./data and
// seeds the demo city.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/services/demo"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "gridd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := node.LoadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, stderr)
	slog.SetDefault(log)
	masked := cfg.Masked()
	keys := make([]string, 0, len(masked))
	for k := range masked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]any, 0, len(keys)*2)
	for _, k := range keys {
		attrs = append(attrs, k, masked[k])
	}
	log.Info("gridd starting", attrs...)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	n, err := node.Start(ctx, cfg, node.Options{Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownWait)
		defer cancel()
		n.Stop(sctx)
		log.Info("gridd stopped")
	}()
	if cfg.HasRole("applier") {
		if cfg.Demo {
			rep, err := n.SeedDemo(ctx)
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			if rep.AlreadySeeded {
				log.Info("demo city already seeded")
			}
		} else if pw, err := n.Bootstrap(ctx); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		} else if pw != "" {
			fmt.Fprintf(stdout, "\nNo users existed: created login 'admin' with password %s — change it.\n", pw)
		}
	}
	var ln net.Listener
	if cfg.HasRole("api") {
		ln, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
		}
		go func() {
			if err := n.Listen(ln); err != nil {
				log.Error("http server stopped", "err", err)
			}
		}()
		printWelcome(stdout, cfg, ln.Addr().String())
	}
	if cfg.PprofAddr != "" {
		pl, err := net.Listen("tcp", cfg.PprofAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", cfg.PprofAddr, err)
		}
		go func() { _ = http.Serve(pl, pprofMux()) }()
		log.Warn("Go profiles served: keep this address private", "pprof", pl.Addr().String())
	}
	log.Info("gridd ready", "http", cfg.HTTPAddr, "startup", time.Since(start).Round(time.Millisecond))
	select {
	case <-ctx.Done():
		log.Info("signal received: shutting down")
	case err := <-n.ApplierErr():
		return fmt.Errorf("applier failed: %w", err)
	}
	return nil
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func printWelcome(w io.Writer, cfg node.Config, addr string) {
	base := "http://" + addr
	var b strings.Builder
	fmt.Fprintf(&b, "\nGridkeeper is running: %s\n", base)
	fmt.Fprintf(&b, "  health   %s/healthz   ready %s/readyz   metrics %s/metrics\n", base, base, base)
	fmt.Fprintf(&b, "  API      %s/v1/ (see README.md for a curl walk-through)\n", base)
	fmt.Fprintf(&b, "  dashboard %s/dashboard/ (log in as district, street or city)\n", base)
	if cfg.Demo {
		fmt.Fprintf(&b, "\nDemo logins (password from GRID_DEMO_PASSWORD, default %q):\n", "gridkeeper")
		for _, l := range demo.Logins {
			fmt.Fprintf(&b, "  %-11s %-13s unit %s\n", l.Login, l.Role, l.Unit)
		}
	}
	fmt.Fprintln(w, b.String())
}

// pprofMux serves Go's runtime profiles (heap, goroutines, CPU) for GRID_PPROF_ADDR.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
