package client

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File names in the state directory.
const (
	outboxFile  = "outbox.json"
	replicaFile = "replica.json"
	authFile    = "auth.json"
	// tempMark is in the name of every temp file; Open deletes such files.
	tempMark = ".tmp-"
)

// outbox is the device's queue side: what must never be lost.
type outbox struct {
	DeviceID string `json:"deviceId"`
	// LastMutationID is the id of the last mutation enqueued; the next one gets +1. It
	// only grows, also when the queue empties.
	LastMutationID int64      `json:"lastMutationId"`
	Queue          []Mutation `json:"queue"`
	Rejected       []Outcome  `json:"rejected"`
	// Attachments wait to be uploaded (their bytes are in attachments/).
	Attachments []Attachment `json:"attachments,omitempty"`
}

// record is one replicated record.
type record struct {
	Version int64           `json:"version"`
	Doc     json.RawMessage `json:"doc"`
}

// replica is the pulled data with the cursor it corresponds to; both are written in
// one file so they can never disagree.
type replica struct {
	Cursor string `json:"cursor"`
	// Scopes are the scopes reported active, by name.
	Scopes      map[string]string            `json:"scopes"`
	Collections map[string]map[string]record `json:"collections"`
}

func newReplica() *replica {
	return &replica{Scopes: map[string]string{}, Collections: map[string]map[string]record{}}
}

// loadReplica reads the replica, or returns an empty one if there is none yet.
func (s *store) loadReplica() (*replica, error) {
	r := newReplica()
	if _, err := s.load(replicaFile, r); err != nil {
		return nil, err
	}
	if r.Scopes == nil {
		r.Scopes = map[string]string{}
	}
	if r.Collections == nil {
		r.Collections = map[string]map[string]record{}
	}
	return r, nil
}

// session is what login and refresh return, kept across restarts.
type session struct {
	Login        string `json:"login"`
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	User         User   `json:"user"`
}

// store reads and atomically replaces the JSON files of one directory.
type store struct{ dir string }

// openStore creates dir if needed and removes temp files a crash left behind: a temp
// file is never the current state (the rename is what commits it), so it is garbage.
func openStore(dir string) (*store, error) {
	if dir == "" {
		return nil, errors.New("client: Options.StateDir is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("client: state dir: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("client: state dir: %w", err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), tempMark) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("client: remove stale temp file: %w", err)
			}
		}
	}
	return &store{dir: dir}, nil
}

// load decodes file into v; it reports false when the file does not exist.
func (s *store) load(file string, v any) (bool, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, file))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("client: read %s: %w", file, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		// Files are only ever replaced whole, so this is not a torn write: something
		// else changed the file. Refuse rather than start over and lose the queue.
		return false, fmt.Errorf("client: %s is corrupt: %w", file, err)
	}
	return true, nil
}

// save replaces file with v: temp file, fsync, rename, fsync of the directory. After
// save returns, the new content survives a power cut; before, the old one does.
func (s *store) save(file string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("client: encode %s: %w", file, err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.dir, file+tempMark+hex.EncodeToString(rnd[:]))
	if err := writeSynced(tmp, data); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("client: write %s: %w", file, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, file)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("client: commit %s: %w", file, err)
	}
	// The rename is durable only once the directory entry is.
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// isJSONObject reports whether data is one JSON object.
func isJSONObject(data []byte) bool {
	d := bytes.TrimSpace(data)
	return len(d) > 0 && d[0] == '{' && json.Valid(d)
}
