// Package ferret runs an embedded FerretDB (SQLite or PostgreSQL backend) inside the
// process and hands out its MongoDB URI, so the rest of the program speaks only the
// MongoDB wire protocol and runs unchanged on a real MongoDB.
package ferret

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Options chooses the backend. With PostgreSQLURL set the PostgreSQL backend is used;
// otherwise SQLite files are kept in Dir.
type Options struct {
	Dir           string
	PostgreSQLURL string
	Logger        *slog.Logger
	// Listen is the TCP address to listen on; empty picks a free loopback port.
	Listen string
}

// Server is a running embedded FerretDB.
type Server struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts FerretDB on a free loopback port (or on opts.Listen) and returns once it
// accepts connections. The port is chosen by the kernel, so two processes with
// different data directories never clash.
func Start(opts Options) (*Server, error) {
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: cmp.Or(opts.Listen, "127.0.0.1:0")},
		Logger:   opts.Logger,
	}
	if cfg.Logger == nil {
		// FerretDB logs every connection at info level; keep only its errors.
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	if opts.PostgreSQLURL != "" {
		cfg.Handler = "postgresql"
		cfg.PostgreSQLURL = opts.PostgreSQLURL
	} else {
		if opts.Dir == "" {
			return nil, errors.New("ferret: a directory is required for the sqlite backend")
		}
		dir, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("ferret: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ferret: %w", err)
		}
		cfg.Handler = "sqlite"
		// The trailing slash matters: FerretDB treats the URI as a directory.
		cfg.SQLiteURL = "file:" + dir + "/"
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ferret: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = f.Run(ctx)
	}()
	uriCh := make(chan string, 1)
	go func() { uriCh <- f.MongoDBURI() }()
	select {
	case s.uri = <-uriCh:
	case <-time.After(30 * time.Second):
		cancel()
		return nil, errors.New("ferret: listener did not start within 30s")
	}
	return s, nil
}

// URI is the mongodb:// address of the running server.
func (s *Server) URI() string { return s.uri }

// Stop closes the listener and the backend and waits for both.
func (s *Server) Stop() {
	s.cancel()
	<-s.done
}
