package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/ferret"
)

// serveFerret runs FerretDB on SQLite in this process until ctx ends: the same server
// gridd embeds, as a process of its own, so an experiment can kill the database
// without killing gridd. FerretDB's own command cannot be built from its module
// (it panics without a generated version file).
//
// Every second it also gives each collection of --db the index on _id that gridd
// gives its embedded FerretDB (see ferret.IndexIDs): without it every update by _id
// scans its table.
func serveFerret(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferretdb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of the SQLite files")
	listen := fs.String("listen", "127.0.0.1:27017", "address to listen on")
	db := fs.String("db", "gridkeeper", "database whose collections get an index on _id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: gridlab ferretdb --dir DIR [--listen ADDR] [--db NAME]")
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := ferret.Start(ferret.Options{Dir: *dir, Listen: *listen, Logger: log})
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Fprintln(stderr, "ferretdb: listening on", srv.URI())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			// Before gridd made the database there is nothing to index (and opening the
			// file would create it behind FerretDB's back).
			if _, err := os.Stat(filepath.Join(*dir, *db+".sqlite")); err != nil {
				continue
			}
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = ferret.IndexIDs(ictx, *dir, *db, nil)
			cancel()
		}
	}
}
