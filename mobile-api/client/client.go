package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// SchemaVersion is the protocol version this client speaks.
const SchemaVersion = 1

// Limits the client keeps on its side.
const (
	// MaxBatch is the most mutations sent in one push.
	MaxBatch = 100
	// MaxArgsBytes is the largest args a mutation may have (the server's default). A
	// mutation the server refuses as a whole can never leave the queue, because ids
	// have no gaps; so Enqueue refuses it instead.
	MaxArgsBytes = 64 << 10
	// DefaultPullLimit is the page size asked for when Options.PullLimit is 0.
	DefaultPullLimit = 500
)

// MutationNames are the v1 mutation names. Enqueue refuses others for the same reason
// as oversized args: the server answers an unknown name with 422 for the whole batch.
var MutationNames = []string{
	"incident.report", "incident.accept", "incident.assign", "incident.start", "incident.resolve",
	"incident.verify", "incident.reopen", "incident.escalate", "incident.refuse", "incident.requestDelay",
	"incident.approveDelay", "incident.merge", "incident.comment", "incident.rate", "complaint.file",
	"household.create", "household.update", "visit.log", "volunteer.recordActivity", "patrol.checkIn",
	// Added to v1 (additive: a client that never sends them is unaffected): the moves
	// between levels that DESIGN §3 names, 交办 and 督办.
	"incident.handDown", "incident.takeOver",
	// Added to v1: the discipline officer answers a complaint.
	"complaint.answer",
}

// Options configure a Client.
type Options struct {
	// BaseURL is the server, e.g. "https://grid.example.cn" (no trailing /v1).
	BaseURL string
	// Login and Password are used to log in when there is no session, or when the
	// refresh token is refused. The password is never written to disk.
	Login, Password string
	// DeviceID is this install's id (letters, digits, - and _; at most 64). Empty
	// uses the one stored in StateDir, or makes one on first Open.
	DeviceID string
	// Platform and AppVersion are sent at login.
	Platform, AppVersion string
	// StateDir holds the client's files; created if absent.
	StateDir string
	// HTTP is the HTTP client; nil uses one with a 60 s timeout.
	HTTP *http.Client
	// Now gives clientTime for Enqueue; nil uses time.Now.
	Now func() time.Time
	// PullLimit is the page size asked for; 0 means DefaultPullLimit.
	PullLimit int
	// BatchSize is the most mutations per push; 0 or above MaxBatch means MaxBatch.
	BatchSize int
}

// Mutation is one queued change, as pushed.
type Mutation struct {
	ID         int64           `json:"id"`
	Name       string          `json:"name"`
	Args       json.RawMessage `json:"args"`
	ClientTime time.Time       `json:"clientTime"`
}

// Outcome is the final result of a mutation the server rejected, kept for the UI.
type Outcome struct {
	Mutation Mutation `json:"mutation"`
	Status   string   `json:"status"`
	Error    Error    `json:"error"`
	// At is when this client learned the outcome.
	At time.Time `json:"at"`
}

// Error is the server's error body {code, message, fields}.
type Error struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// User is the logged-in user.
type User struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Roles  []string `json:"roles"`
	UnitID string   `json:"unitId"`
}

// Progress is the server's estimate of a long pull.
type Progress struct {
	Remaining uint64 `json:"remaining"`
	Total     uint64 `json:"total"`
}

// Report says what one Sync did.
type Report struct {
	Pushed   int // mutations sent, re-sends included
	Applied  int // outcomes learned as applied (from pushes and pulls)
	Rejected int // outcomes learned as rejected
	Pending  int // mutations the server answered pending; they stay queued
	Pulled   int // changes applied to the replica
	Pages    int // pull pages applied
	Resets   int // times the server asked to start over (reset or a removed scope)
	// BytesSent and BytesReceived count request and (decoded) response bodies.
	BytesSent, BytesReceived int64
	// Progress is the last page's progress.
	Progress Progress
}

// Client is one device's sync state and the code that moves it. Sync is meant for one
// goroutine at a time (concurrent calls wait for each other); Enqueue and the
// accessors may be called from any goroutine, also while Sync runs.
type Client struct {
	opt   Options
	http  *http.Client
	store *store

	syncMu sync.Mutex // one Sync at a time
	batch  int        // push batch size; halved on 413 for the life of the Client

	mu   sync.Mutex // guards the fields below and the files
	box  outbox
	rep  *replica
	sess session
}

// Open loads the client's state from o.StateDir, creating it if absent. It does not
// touch the network.
func Open(o Options) (*Client, error) {
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PullLimit <= 0 {
		o.PullLimit = DefaultPullLimit
	}
	if o.BatchSize <= 0 || o.BatchSize > MaxBatch {
		o.BatchSize = MaxBatch
	}
	st, err := openStore(o.StateDir)
	if err != nil {
		return nil, err
	}
	c := &Client{opt: o, http: o.HTTP, store: st, batch: o.BatchSize}
	if c.http == nil {
		c.http = &http.Client{Timeout: 60 * time.Second}
	}
	found, err := st.load(outboxFile, &c.box)
	if err != nil {
		return nil, err
	}
	switch {
	case !found:
		c.box.DeviceID = o.DeviceID
		if c.box.DeviceID == "" {
			c.box.DeviceID = "gk-" + uuid.NewString()
		}
		if !validDeviceID(c.box.DeviceID) {
			return nil, fmt.Errorf("client: device id %q: use 1 to 64 letters, digits, - and _", c.box.DeviceID)
		}
		if err := st.save(outboxFile, &c.box); err != nil {
			return nil, err
		}
	case o.DeviceID != "" && o.DeviceID != c.box.DeviceID:
		return nil, fmt.Errorf("client: %s belongs to device %q, not %q (mutation ids count per device)", o.StateDir, c.box.DeviceID, o.DeviceID)
	}
	c.opt.DeviceID = c.box.DeviceID
	if c.rep, err = st.loadReplica(); err != nil {
		return nil, err
	}
	if _, err := st.load(authFile, &c.sess); err != nil {
		return nil, err
	}
	if c.sess.Login != "" && !strings.EqualFold(c.sess.Login, o.Login) {
		// Another user's tokens: never act as them.
		c.sess = session{}
	}
	return c, nil
}

func validDeviceID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Enqueue appends a mutation to the offline queue and returns its id. It needs no
// network; the mutation is on disk when Enqueue returns. args is marshalled to JSON
// (a json.RawMessage is taken as is) and must be an object.
func (c *Client) Enqueue(name string, args any) (int64, error) {
	if !slices.Contains(MutationNames, name) {
		return 0, fmt.Errorf("client: unknown mutation %q", name)
	}
	raw, ok := args.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(args); err != nil {
			return 0, fmt.Errorf("client: %s args: %w", name, err)
		}
	}
	if !isJSONObject(raw) {
		return 0, fmt.Errorf("client: %s args must be a JSON object", name)
	}
	if len(raw) > MaxArgsBytes {
		return 0, fmt.Errorf("client: %s args are %d bytes, over %d", name, len(raw), MaxArgsBytes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := Mutation{ID: c.box.LastMutationID + 1, Name: name, Args: raw, ClientTime: c.opt.Now()}
	next := c.box
	next.LastMutationID = m.ID
	next.Queue = append(slices.Clip(c.box.Queue), m)
	// Persist before the id counts as used: if the write fails, nothing changed.
	if err := c.store.save(outboxFile, &next); err != nil {
		return 0, err
	}
	c.box = next
	return m.ID, nil
}

// Queue returns the mutations not yet final, in id order.
func (c *Client) Queue() []Mutation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.box.Queue)
}

// LastMutationID returns the id of the last mutation enqueued (0 before the first).
func (c *Client) LastMutationID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.box.LastMutationID
}

// Rejected returns the mutations the server rejected, oldest first, until dismissed.
func (c *Client) Rejected() []Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.box.Rejected)
}

// DismissRejected removes the rejected outcome of mutation id (the user has seen it).
func (c *Client) DismissRejected(id int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.box
	next.Rejected = slices.DeleteFunc(slices.Clone(c.box.Rejected), func(o Outcome) bool { return o.Mutation.ID == id })
	if err := c.store.save(outboxFile, &next); err != nil {
		return err
	}
	c.box = next
	return nil
}

// Replica returns the documents of a collection by record id.
func (c *Client) Replica(collection string) map[string]json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]json.RawMessage, len(c.rep.Collections[collection]))
	for id, r := range c.rep.Collections[collection] {
		out[id] = r.Doc
	}
	return out
}

// Scopes returns the scopes the server reported active, by name.
func (c *Client) Scopes() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.rep.Scopes)
}

// DeviceID returns this install's device id (the push's clientId).
func (c *Client) DeviceID() string { return c.opt.DeviceID }

// User returns the logged-in user (zero before the first login).
func (c *Client) User() User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.User
}

// ErrGap is returned (wrapped in a *GapError) when the server's mutation mark is
// behind the queue and the mutations in between are no longer queued.
var ErrGap = errors.New("mutation gap")

// GapError means the server expects mutation ServerLast+1 next but the queue starts
// later: the ids in between were final on this device, yet the server no longer knows
// them (it lost state, or the device id was reused). The queue is kept; nothing the
// client can send fixes this, so it needs people.
type GapError struct {
	ServerLast int64 // the server's lastMutationId
	QueueFirst int64 // the first id still queued
}

func (e *GapError) Error() string {
	return fmt.Sprintf("client: the server expects mutation %d but the queue starts at %d; the queue is kept", e.ServerLast+1, e.QueueFirst)
}

// Unwrap makes errors.Is(err, ErrGap) true.
func (e *GapError) Unwrap() error { return ErrGap }
