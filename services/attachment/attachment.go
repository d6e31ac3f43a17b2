// Package attachment stores photos and other attachments by the SHA-256 of their
// bytes: uploads are idempotent, checked against their hash, resumable chunk by chunk,
// and downloads follow the scope of the records that reference them.
//
// Bytes live on the file system under one directory (content-addressed, written to a
// temp file and renamed, so a crash never leaves a half file under a final name). The
// file system rather than GridFS: FerretDB stores GridFS chunks as documents it scans,
// while a file is read with one open; for several gridd instances the directory is a
// shared volume (or an object store behind the same Store methods).
package attachment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configures the store.
type Options struct {
	Dir     string
	MaxSize int64
	Types   []string
}

// Refs tells which units' records reference an attachment.
type Refs interface {
	Units(ctx context.Context, sha string) ([]string, error)
}

// Store keeps attachments.
type Store struct {
	opt  Options
	refs Refs
	mu   sync.Mutex
	busy map[string]*sync.Mutex
}

// Meta describes a stored (or partly stored) attachment.
type Meta struct {
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	ContentType string    `json:"contentType"`
	Uploader    string    `json:"uploader"`
	Unit        string    `json:"unit"` // the uploader's home unit
	At          time.Time `json:"at"`
	// Stored is how many bytes are kept (Size once complete).
	Stored int64 `json:"stored"`
}

var shaRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidSHA reports whether s is a lower-case hex SHA-256 (the only names the store
// accepts, so no path can be smuggled in).
func ValidSHA(s string) bool { return shaRe.MatchString(s) }

// MaxPhotos is the most photos a record may reference.
const MaxPhotos = 9

// CheckPhotos adds to f what is wrong with a record's photo references under field:
// at most MaxPhotos, each the hash of an attachment.
func CheckPhotos(f fault.Fields, field string, ps []string) {
	if len(ps) > MaxPhotos {
		f.Add(field, "at most 9 photos")
	}
	for _, p := range ps {
		if !ValidSHA(p) {
			f.Add(field, "each photo is the lower-case hex SHA-256 of its bytes")
			return
		}
	}
}

// New opens the store, creating its directories.
func New(opt Options, refs Refs) (*Store, error) {
	for _, d := range []string{opt.Dir, filepath.Join(opt.Dir, "partial")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("attachment: %w", err)
		}
	}
	return &Store{opt: opt, refs: refs, busy: map[string]*sync.Mutex{}}, nil
}

func (s *Store) final(sha string) string   { return filepath.Join(s.opt.Dir, sha[:2], sha) }
func (s *Store) partial(sha string) string { return filepath.Join(s.opt.Dir, "partial", sha) }

// lock serialises work on one hash within the process; flock does across processes
// sharing the directory.
func (s *Store) lock(sha string) func() {
	s.mu.Lock()
	m, ok := s.busy[sha]
	if !ok {
		m = &sync.Mutex{}
		s.busy[sha] = m
	}
	s.mu.Unlock()
	m.Lock()
	f, err := os.OpenFile(s.partial(sha)+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	}
	return func() {
		if f != nil {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			f.Close()
			_ = os.Remove(f.Name())
		}
		m.Unlock()
	}
}

func (s *Store) check(sha, ctype string, size int64) error {
	if !ValidSHA(sha) {
		return fault.New(fault.Invalid, "invalid_sha256", "the name must be the lower-case hex SHA-256 of the bytes")
	}
	if ctype != "" && !slices.Contains(s.opt.Types, ctype) {
		return fault.New(fault.UnsupportedMedia, "unsupported_media_type", "allowed types: "+fmt.Sprint(s.opt.Types))
	}
	if size <= 0 {
		return fault.New(fault.Invalid, "invalid_length", "the upload's length is required")
	}
	if size > s.opt.MaxSize {
		return fault.New(fault.TooLarge, "too_large", "attachments are at most "+strconv.FormatInt(s.opt.MaxSize, 10)+" bytes")
	}
	return nil
}

// Put stores a whole upload. created is false when the bytes were already stored.
func (s *Store) Put(a org.Actor, sha, ctype string, body []byte) (m Meta, created bool, err error) {
	if err := s.check(sha, ctype, int64(len(body))); err != nil {
		return Meta{}, false, err
	}
	defer s.lock(sha)()
	if m, err := s.readMeta(s.final(sha)); err == nil {
		return m, false, nil
	}
	if err := verify(sha, body); err != nil {
		return Meta{}, false, err
	}
	m = Meta{SHA256: sha, Size: int64(len(body)), ContentType: ctype, Uploader: a.UserID, Unit: a.UnitID, At: time.Now().UTC(), Stored: int64(len(body))}
	if err := s.commit(sha, m, body); err != nil {
		return Meta{}, false, err
	}
	_ = os.Remove(s.partial(sha))
	_ = os.Remove(s.partial(sha) + ".json")
	return m, true, nil
}

// Append adds a chunk at offset to a resumable upload. The first chunk (offset 0,
// nothing stored) must say the whole length and type. complete is true once the last
// byte arrived and the hash matched.
func (s *Store) Append(a org.Actor, sha string, offset, length int64, ctype string, chunk []byte) (m Meta, complete bool, err error) {
	if !ValidSHA(sha) {
		return Meta{}, false, fault.New(fault.Invalid, "invalid_sha256", "the name must be the lower-case hex SHA-256 of the bytes")
	}
	defer s.lock(sha)()
	if m, err := s.readMeta(s.final(sha)); err == nil {
		return m, true, nil
	}
	m, err = s.readMeta(s.partial(sha))
	if err != nil {
		if offset != 0 {
			return Meta{}, false, offsetMismatch(0)
		}
		if err := s.check(sha, ctype, length); err != nil {
			return Meta{}, false, err
		}
		m = Meta{SHA256: sha, Size: length, ContentType: ctype, Uploader: a.UserID, Unit: a.UnitID, At: time.Now().UTC()}
		_ = os.Remove(s.partial(sha))
	}
	if m.Uploader != a.UserID {
		return Meta{}, false, fault.New(fault.Conflict, "upload_in_progress", "another user is uploading these bytes")
	}
	if offset != m.Stored {
		return m, false, offsetMismatch(m.Stored)
	}
	if m.Stored+int64(len(chunk)) > m.Size {
		return m, false, fault.New(fault.TooLarge, "too_large", "the chunk runs past the announced length")
	}
	// Write at the recorded length, not at the file's end: a crash between the
	// bytes and their description may have left a longer file.
	f, err := os.OpenFile(s.partial(sha), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return m, false, fault.Wrap(err, "store chunk")
	}
	werr := f.Truncate(m.Stored)
	if werr == nil {
		_, werr = f.WriteAt(chunk, m.Stored)
	}
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	f.Close()
	if werr != nil {
		return m, false, fault.Wrap(werr, "store chunk")
	}
	if m.Stored+int64(len(chunk)) < m.Size {
		m.Stored += int64(len(chunk))
		if err := writeJSON(s.partial(sha)+".json", m); err != nil {
			return m, false, err
		}
		return m, false, nil
	}
	// The last chunk: the upload counts as stored only once it is committed under its
	// final name (its description never says "all bytes" before that).
	m.Stored = m.Size
	body, err := os.ReadFile(s.partial(sha))
	if err != nil {
		return m, false, fault.Wrap(err, "read upload")
	}
	if err := verify(sha, body); err != nil {
		_ = os.Remove(s.partial(sha))
		_ = os.Remove(s.partial(sha) + ".json")
		return Meta{}, false, err
	}
	if err := s.commit(sha, m, body); err != nil {
		return m, false, err
	}
	_ = os.Remove(s.partial(sha))
	_ = os.Remove(s.partial(sha) + ".json")
	return m, true, nil
}

// Head tells how much of an upload is stored; found is false when nothing is.
func (s *Store) Head(sha string) (Meta, bool) {
	if !ValidSHA(sha) {
		return Meta{}, false
	}
	if m, err := s.readMeta(s.final(sha)); err == nil {
		return m, true
	}
	if m, err := s.readMeta(s.partial(sha)); err == nil {
		return m, true
	}
	return Meta{}, false
}

// Open returns a complete attachment the actor may read: its own upload, or one
// referenced by a record in the actor's scope. Anything else is not found.
func (s *Store) Open(ctx context.Context, a org.Actor, sha string) (*os.File, Meta, error) {
	notFound := fault.New(fault.NotFound, "not_found", "no such attachment")
	if !ValidSHA(sha) {
		return nil, Meta{}, notFound
	}
	m, err := s.readMeta(s.final(sha))
	if err != nil {
		return nil, Meta{}, notFound
	}
	if m.Uploader != a.UserID {
		units, err := s.refs.Units(ctx, sha)
		if err != nil {
			return nil, Meta{}, err
		}
		if !slices.ContainsFunc(units, a.Sees) {
			return nil, Meta{}, notFound
		}
	}
	f, err := os.Open(s.final(sha))
	if err != nil {
		return nil, Meta{}, notFound
	}
	return f, m, nil
}

func offsetMismatch(stored int64) error {
	return &fault.Error{Kind: fault.Conflict, Code: "offset_mismatch", Message: "resume at the stored length",
		Extra: map[string]any{"uploadOffset": stored}}
}

func verify(sha string, body []byte) error {
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != sha {
		return fault.New(fault.Conflict, "hash_mismatch", "the bytes do not hash to the name; nothing was kept")
	}
	return nil
}

// commit writes the bytes and their description under the final name, atomically.
func (s *Store) commit(sha string, m Meta, body []byte) error {
	dir := filepath.Dir(s.final(sha))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fault.Wrap(err, "store attachment")
	}
	m.Stored = m.Size
	if err := writeFile(s.final(sha), body); err != nil {
		return err
	}
	return writeJSON(s.final(sha)+".json", m)
}

func (s *Store) readMeta(path string) (Meta, error) {
	var m Meta
	data, err := os.ReadFile(path + ".json")
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, err
	}
	if _, err := os.Stat(path); err != nil && !(errors.Is(err, os.ErrNotExist) && m.Stored == 0) {
		return m, err
	}
	return m, nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fault.Wrap(err, "encode attachment meta")
	}
	return writeFile(path, data)
}

// writeFile writes via a temp file, fsync and rename.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fault.Wrap(err, "store attachment")
	}
	_, werr := tmp.Write(data)
	if err := tmp.Sync(); werr == nil {
		werr = err
	}
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fault.Wrap(werr, "store attachment")
	}
	return nil
}

// KVRefs reads attachment references from the key-value bucket the write path keeps
// (key "<sha256>.<record id>", value the record's scope unit).
type KVRefs struct{ KV jetstream.KeyValue }

// Units lists the scope units of the records referencing sha.
func (r KVRefs) Units(ctx context.Context, sha string) ([]string, error) {
	lister, err := r.KV.ListKeysFiltered(ctx, sha+".*")
	if err != nil {
		return nil, fault.Wrap(err, "read attachment references")
	}
	var units []string
	for k := range lister.Keys() {
		e, err := r.KV.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		units = append(units, string(e.Value()))
	}
	return units, nil
}
