// Package nodetest starts whole gridd nodes for tests, on the shared embedded servers
// of testrig (or on an embedded stack in a temp dir), with a real HTTP listener, a
// small org tree and logged-in clients.
package nodetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/pkg/testrig"
	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/directory"
	"github.com/gridkeeper/gridkeeper/services/org"
	"golang.org/x/crypto/bcrypt"
)

// Org codes of the test tree: one city, district, street, two communities; community A
// has grids A1..A8, community B has grid B1.
const (
	City       = "110100"
	District   = "110105"
	Street     = "110105001"
	CommunityA = "110105001001"
	CommunityB = "110105001002"
	GridB1     = "110105001002001"
	Password   = "test-password"
)

// GridA returns grid i (1..8) of community A.
func GridA(i int) string { return fmt.Sprintf("%s%03d", CommunityA, i) }

// Harness is a running node with its HTTP address.
type Harness struct {
	T     testing.TB
	Env   testrig.Env
	Cfg   node.Config
	Opts  node.Options
	Node  *node.Node
	URL   string
	Clock *Clock
}

// Clock is a settable clock for auth and sync.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to the present.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Config returns a test configuration on env.
func Config(env testrig.Env, dataDir string) node.Config {
	cfg, err := node.LoadConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		panic(err)
	}
	cfg.DataDir = dataDir
	cfg.MongoURI = env.MongoURI
	cfg.MongoDB = env.DB
	cfg.NATSURL = env.NATSURL
	cfg.Prefix = env.Prefix
	cfg.Partitions = 4
	cfg.BcryptCost = bcrypt.MinCost
	cfg.PushWait = 10 * time.Second
	cfg.Demo = false
	cfg.JWTKey = "test-key-test-key-test-key-test-key-0123"
	cfg.DataKey = TestDataKey
	cfg.LogLevel = "warn"
	return cfg
}

// TestDataKey is the data key of test nodes (the keyring is one per process).
const TestDataKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

// Start starts a node on the shared servers. mod may change the config first.
func Start(t testing.TB, mod func(*node.Config, *node.Options)) *Harness {
	t.Helper()
	env := testrig.New(t)
	h := &Harness{T: t, Env: env, Cfg: Config(env, t.TempDir())}
	if mod != nil {
		mod(&h.Cfg, &h.Opts)
	}
	h.start()
	t.Cleanup(h.Stop)
	return h
}

// StartEmbedded starts a node with its own embedded FerretDB and NATS in dataDir.
func StartEmbedded(t testing.TB, dataDir string, mod func(*node.Config, *node.Options)) *Harness {
	t.Helper()
	h := &Harness{T: t, Cfg: Config(testrig.Env{Servers: &testrig.Servers{}}, dataDir)}
	h.Cfg.MongoDB = "gridkeeper"
	h.Cfg.Prefix = "GK"
	if mod != nil {
		mod(&h.Cfg, &h.Opts)
	}
	h.start()
	t.Cleanup(h.Stop)
	return h
}

func (h *Harness) start() {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, h.Cfg, h.Opts)
	if err != nil {
		h.T.Fatalf("node start: %v", err)
	}
	// A restart listens where the node listened before, so clients keep their URL.
	addr := "127.0.0.1:0"
	if h.URL != "" {
		addr = h.URL[len("http://"):]
	}
	var ln net.Listener
	var err2 error
	for i := 0; i < 50; i++ {
		if ln, err2 = net.Listen("tcp", addr); err2 == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err2 != nil {
		h.T.Fatalf("listen %s: %v", addr, err2)
	}
	go func() { _ = n.Listen(ln) }()
	h.Node, h.URL = n, "http://"+ln.Addr().String()
	deadline := time.Now().Add(30 * time.Second)
	for n.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			h.T.Fatalf("node not ready: %v", n.Ready(ctx))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop stops the node (idempotent).
func (h *Harness) Stop() {
	if h.Node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		h.Node.Stop(ctx)
		h.Node = nil
	}
}

// Restart stops the node and starts a new one on the same database, streams and
// address.
func (h *Harness) Restart(mod func(*node.Config, *node.Options)) {
	h.T.Helper()
	h.Stop()
	if mod != nil {
		mod(&h.Cfg, &h.Opts)
	}
	h.start()
}

// User is a fixture user.
type User struct {
	Login, Unit string
	Roles       []string
}

// Users of the fixture org: worker1..8 in grids A1..A8, workerb in B1, dispatcher
// of A and of B, a handler in A, street/district/city supervisors, discipline, admin.
func Users(grids int) []User {
	us := []User{}
	for i := 1; i <= grids; i++ {
		us = append(us, User{fmt.Sprintf("worker%d", i), GridA(i), []string{org.RoleGridManager}})
	}
	return append(us,
		User{"workerb", GridB1, []string{org.RoleGridManager}},
		User{"dispatcher", CommunityA, []string{org.RoleDispatcher}},
		User{"dispatcherb", CommunityB, []string{org.RoleDispatcher}},
		User{"handler", CommunityA, []string{org.RoleHandler}},
		User{"street", Street, []string{org.RoleSupervisor, org.RoleLeader}},
		User{"district", District, []string{org.RoleSupervisor, org.RoleLeader}},
		User{"city", City, []string{org.RoleSupervisor, org.RoleLeader}},
		User{"discipline", District, []string{org.RoleDiscipline}},
		User{"admin", City, []string{org.RoleAdmin}},
	)
}

// Org creates the fixture tree with grids grids in community A, through the command
// path.
func (h *Harness) Org(grids int) {
	h.T.Helper()
	ctx := context.Background()
	sys := org.SystemActor("test")
	levels := [][]string{{City}, {District}, {Street}, {CommunityA, CommunityB}, {GridB1}}
	for i := 1; i <= grids; i++ {
		levels[4] = append(levels[4], GridA(i))
	}
	for _, lvl := range levels {
		var reqs []command.Request
		for _, u := range lvl {
			reqs = append(reqs, command.Request{Name: directory.CmdCreateUnit, Key: org.PartitionKey(u), Actor: sys,
				Args: directory.CreateUnitArgs{ID: u, Name: "unit " + u}})
		}
		h.must(h.Node.Bus.DoAll(ctx, reqs, 30*time.Second))
	}
	hash, err := auth.HashPassword(Password, bcrypt.MinCost)
	if err != nil {
		h.T.Fatal(err)
	}
	var reqs []command.Request
	for _, u := range Users(grids) {
		reqs = append(reqs, command.Request{Name: directory.CmdCreateUser, Key: org.PartitionKey(u.Unit), Actor: sys,
			Args: directory.CreateUserArgs{Login: u.Login, Name: "name " + u.Login, Roles: u.Roles, UnitID: u.Unit, PasswordHash: hash}})
	}
	h.must(h.Node.Bus.DoAll(ctx, reqs, 30*time.Second))
}

func (h *Harness) must(outs []command.Outcome, err error) {
	h.T.Helper()
	if err != nil {
		h.T.Fatalf("commands: %v", err)
	}
	for _, o := range outs {
		if o.Status != command.Applied {
			h.T.Fatalf("command %s: %s %+v", o.ID, o.Status, o.Error)
		}
	}
}

// Client is a logged-in device.
type Client struct {
	h        *Harness
	Device   string
	Token    string
	Refresh  string
	User     auth.UserInfo
	NextMut  int64
	Mu       sync.Mutex
	HTTP     *http.Client
	LastBody []byte
}

// Login logs in on a device; it fails the test on error.
func (h *Harness) Login(login, device string) *Client {
	h.T.Helper()
	c := &Client{h: h, Device: device, NextMut: 1, HTTP: &http.Client{Timeout: 60 * time.Second}}
	var t auth.Tokens
	st := c.Do("POST", "/v1/auth/login", map[string]string{"login": login, "password": Password, "deviceId": device, "platform": "android", "appVersion": "test"}, &t)
	if st != 200 {
		h.T.Fatalf("login %s: status %d: %s", login, st, c.LastBody)
	}
	c.Token, c.Refresh, c.User = t.AccessToken, t.RefreshToken, t.User
	return c
}

// Anon is a client without a token.
func (h *Harness) Anon() *Client {
	return &Client{h: h, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// Do sends a request with body (marshalled unless []byte) and decodes the answer into
// out when out is not nil; it returns the status.
func (c *Client) Do(method, path string, body any, out any) int {
	c.h.T.Helper()
	st, data := c.Raw(method, path, body, nil)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.h.T.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return st
}

// Raw sends a request and returns status and body.
func (c *Client) Raw(method, path string, body any, hdr map[string]string) (int, []byte) {
	c.h.T.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.h.T.Fatalf("marshal: %v", err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.h.URL+path, r)
	if err != nil {
		c.h.T.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		// Errorf, not Fatalf: clients run in goroutines of their own.
		c.h.T.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	c.Mu.Lock()
	c.LastBody = data
	c.Mu.Unlock()
	return resp.StatusCode, data
}

// Mutation is one queued handset mutation.
type Mutation struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Args       any        `json:"args"`
	ClientTime *time.Time `json:"clientTime,omitempty"`
}

// PushResult mirrors the push answer.
type PushResult struct {
	LastMutationID int64 `json:"lastMutationId"`
	Results        []struct {
		ID      int64               `json:"id"`
		Status  string              `json:"status"`
		Error   *command.ErrorBody  `json:"error"`
		Changes []command.ChangeRef `json:"changes"`
	} `json:"results"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Push sends mutations as the client's queue; it returns status and answer.
func (c *Client) Push(muts []Mutation) (int, PushResult) {
	var r PushResult
	st, data := c.Raw("POST", "/v1/sync/push", map[string]any{"clientId": c.Device, "schemaVersion": 1, "mutations": muts}, nil)
	if len(data) > 0 {
		_ = json.Unmarshal(data, &r)
	}
	return st, r
}

// Queue numbers mutations with the client's next ids.
func (c *Client) Queue(names []string, args []any) []Mutation {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	out := make([]Mutation, len(names))
	for i := range names {
		out[i] = Mutation{ID: c.NextMut, Name: names[i], Args: args[i]}
		c.NextMut++
	}
	return out
}

// PullPage mirrors the pull answer.
type PullPage struct {
	Cursor          string            `json:"cursor"`
	HasMore         bool              `json:"hasMore"`
	Reset           bool              `json:"reset"`
	LastMutationID  int64             `json:"lastMutationId"`
	Changes         []command.Change  `json:"changes"`
	MutationResults []json.RawMessage `json:"mutationResults"`
	Scopes          []struct {
		Scope, Status string
	} `json:"scopes"`
	Progress struct {
		Remaining, Total uint64
	} `json:"progress"`
	Code string `json:"code"`
}

// Pull fetches one page after cursor.
func (c *Client) Pull(cursor string, limit int) (int, PullPage) {
	var p PullPage
	st, data := c.Raw("POST", "/v1/sync/pull", map[string]any{"clientId": c.Device, "schemaVersion": 1, "cursor": cursor, "limit": limit}, nil)
	if len(data) > 0 {
		_ = json.Unmarshal(data, &p)
	}
	return st, p
}

// Report returns incident.report args for a new incident in the client's grid. Each
// call takes the next point of a lattice 0.001° (about 110 m) apart, so reports of a
// test are never taken for duplicates of each other (same category within 50 m)
// unless a test places them so.
func Report(id string) map[string]any {
	n := reportPoint.Add(1)
	lat := 39.8 + float64(n%1000)*0.001
	lng := 116.3 + float64(n/1000%1000)*0.001
	return map[string]any{"incidentId": id, "category": "place.sanitation", "description": "垃圾堆放未清运",
		"location": map[string]float64{"lat": lat, "lng": lng}}
}

var reportPoint atomic.Int64
