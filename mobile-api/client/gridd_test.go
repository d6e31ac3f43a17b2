package client_test

// The tests run the real server binary: cmd/gridd, built once per test binary, on the
// shared FerretDB and NATS of pkg/testrig (a database and stream prefix per test). The
// in-process harness cmd/internal/node/nodetest cannot be imported from here (Go's
// internal rule: only packages under cmd/ may), and a process is what a phone talks to
// anyway. Its clock cannot be set, so token expiry is produced by restarting it with
// another signing key (see TestTokenExpiry).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/testrig"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The fixture org, under the city the server's bootstrap admin is created in.
const (
	city      = "990100"
	district  = "990102"
	street    = "990102001"
	community = "990102001001"
	password  = "test-password"
)

func grid(i int) string { return fmt.Sprintf("%s%03d", community, i) }

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := testrig.Main(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// griddBinary builds cmd/gridd once for the whole test binary.
func griddBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "gk-client-test-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "gridd"), "github.com/gridkeeper/gridkeeper/cmd/gridd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/gridd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "gridd")
}

// server is one gridd process.
type server struct {
	t     testing.TB
	env   testrig.Env
	URL   string
	addr  string
	data  string
	key   string
	extra []string
	cmd   *exec.Cmd
	logs  *lockedBuffer
	exit  chan error
}

// startServer starts gridd with its own database and streams; extra are more
// GRID_...=value settings.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s := &server{t: t, env: testrig.New(t), URL: "http://" + addr, addr: addr, data: t.TempDir(),
		key: "client-test-key-client-test-key-0001", extra: extra}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.logs = &lockedBuffer{}
	s.cmd = exec.Command(griddBinary(s.t))
	s.cmd.Env = append(os.Environ(),
		"GRID_HTTP_ADDR="+s.addr, "GRID_DATA_DIR="+s.data,
		"GRID_MONGO_URI="+s.env.MongoURI, "GRID_MONGO_DB="+s.env.DB,
		"GRID_NATS_URL="+s.env.NATSURL, "GRID_STREAM_PREFIX="+s.env.Prefix,
		"GRID_PARTITIONS=4", "GRID_DEMO=false", "GRID_ADMIN_PASSWORD="+password,
		"GRID_BCRYPT_COST=4", "GRID_JWT_KEY="+s.key, "GRID_PUSH_WAIT=10s", "GRID_LOG_LEVEL=warn")
	s.cmd.Env = append(s.cmd.Env, s.extra...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start gridd: %v", err)
	}
	s.exit = make(chan error, 1)
	go func(c *exec.Cmd, exit chan error) { exit <- c.Wait() }(s.cmd, s.exit)
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-s.exit:
			s.cmd = nil
			s.t.Fatalf("gridd exited: %v\n%s", err, s.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("gridd not ready\n%s", s.logs.String())
		}
	}
}

// stop ends the process with SIGINT, as an operator would (idempotent).
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// restart stops gridd and starts it again on the same data, with key as the access
// token signing key.
func (s *server) restart(key string) {
	s.t.Helper()
	s.stop()
	s.key = key
	s.start()
}

// do sends a JSON request and decodes the answer into out; it returns the status.
func (s *server) do(method, path, token string, body, out any) int {
	s.t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if out != nil && len(answer) > 0 {
		if err := json.Unmarshal(answer, out); err != nil {
			s.t.Fatalf("%s %s: %q: %v", method, path, answer, err)
		}
	}
	return resp.StatusCode
}

// org creates district, street, community and grids 1..n through the admin API, with
// users worker1..n (grid managers of grid i) and dispatcher (of the community).
func (s *server) org(grids int) {
	s.t.Helper()
	var tok struct{ AccessToken string }
	if st := s.do("POST", "/v1/auth/login", "", map[string]string{"login": "admin", "password": password, "deviceId": "test-admin"}, &tok); st != 200 {
		s.t.Fatalf("admin login: %d", st)
	}
	units := []string{district, street, community}
	for i := 1; i <= grids; i++ {
		units = append(units, grid(i))
	}
	for _, u := range units {
		if st := s.do("POST", "/v1/admin/units", tok.AccessToken, map[string]string{"id": u, "name": "unit " + u}, nil); st != 201 {
			s.t.Fatalf("create unit %s: %d", u, st)
		}
	}
	user := func(login, unit, role string) {
		body := map[string]any{"login": login, "name": "name " + login, "roles": []string{role}, "unitId": unit, "password": password}
		if st := s.do("POST", "/v1/admin/users", tok.AccessToken, body, nil); st != 201 {
			s.t.Fatalf("create user %s: %d", login, st)
		}
	}
	for i := 1; i <= grids; i++ {
		user(fmt.Sprintf("worker%d", i), grid(i), "grid_manager")
	}
	user("dispatcher", community, "dispatcher")
}

// incidents returns the server's stored incidents: id → number of "report" entries in
// the history.
func (s *server) incidents() map[string]int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cur, err := s.env.Mongo(s.t).Collection(incident.Coll).Find(ctx, bson.D{})
	if err != nil {
		s.t.Fatal(err)
	}
	var docs []struct {
		ID      string `bson:"_id"`
		History []struct {
			Action string `bson:"action"`
		} `bson:"history"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range docs {
		out[d.ID] += 0
		for _, h := range d.History {
			if h.Action == "report" {
				out[d.ID]++
			}
		}
	}
	return out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// download fetches an attachment as login (on a device of its own).
func (s *server) download(t *testing.T, login, sha string) []byte {
	t.Helper()
	var tok struct{ AccessToken string }
	if st := s.do("POST", "/v1/auth/login", "", map[string]string{"login": login, "password": password, "deviceId": "download-" + login}, &tok); st != 200 {
		t.Fatalf("login %s: %d", login, st)
	}
	req, _ := http.NewRequest("GET", s.URL+"/v1/attachments/"+sha, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("download: %d %s", resp.StatusCode, body)
	}
	return body
}
