package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startGridd runs gridd as `go run ./cmd/gridd` would, with a fresh data dir, and
// returns its base URL once it serves /readyz.
func startGridd(t *testing.T, dir string, extra map[string]string) (string, func()) {
	t.Helper()
	vars := map[string]string{"GRID_DATA_DIR": dir, "GRID_HTTP_ADDR": "127.0.0.1:0", "GRID_BCRYPT_COST": "4", "GRID_LOG_LEVEL": "warn"}
	for k, v := range extra {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuf{}, &syncBuf{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, out, errOut) }()
	re := regexp.MustCompile(`Gridkeeper is running: (http://[0-9.:]+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			if resp, err := http.Get(m[1] + "/readyz"); err == nil && resp.StatusCode == 200 {
				resp.Body.Close()
				return m[1], func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("gridd exit: %v", err)
					}
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("gridd exited: %v\n%s\n%s", err, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gridd not ready\n%s\n%s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %.300s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

func login(t *testing.T, base, user, device string) string {
	t.Helper()
	var tok struct{ AccessToken string }
	if st := call(t, "POST", base+"/v1/auth/login", "", map[string]string{"login": user, "password": "gridkeeper", "deviceId": device}, &tok); st != 200 {
		t.Fatalf("login %s: %d", user, st)
	}
	return tok.AccessToken
}

// The "done when", as a newcomer does it: gridd starts on the embedded default
// with the demo city; worker1 reports and pulls the report back; the dispatcher sees it
// and accepts it; a restart keeps everything and seeds nothing twice.
func TestGriddDemoWalkthrough(t *testing.T) {
	dir := t.TempDir()
	base, stop := startGridd(t, dir, nil)

	var units struct{ Units []struct{ ID string } }
	call(t, "GET", base+"/v1/units", login(t, base, "admin", "web-admin"), nil, &units)
	if len(units.Units) != 9 {
		t.Errorf("demo units: %d, want 9 (city, district, street, community, 5 grids)", len(units.Units))
	}
	w := login(t, base, "worker1", "phone-w1")
	type page struct {
		Cursor  string
		HasMore bool
		Changes []struct {
			Collection, ID string
			Doc            struct{ Status string }
		}
	}
	pullAll := func(token, device string) map[string]string {
		status := map[string]string{}
		cursor := ""
		for {
			var p page
			if st := call(t, "POST", base+"/v1/sync/pull", token, map[string]any{"clientId": device, "schemaVersion": 1, "cursor": cursor}, &p); st != 200 {
				t.Fatalf("pull: %d", st)
			}
			for _, c := range p.Changes {
				if c.Collection == "incidents" {
					status[c.ID] = c.Doc.Status
				}
			}
			cursor = p.Cursor
			if !p.HasMore {
				return status
			}
		}
	}
	d := login(t, base, "dispatcher", "web-dispatcher")
	ledgers := pullLedgers(t, base, d, "web-dispatcher")
	for what, want := range map[string]int{"households": 844, "residents": 3086, "floating": 156, "organisations": 13,
		"teams": 6, "activities": 42, "served": 1862, "masked ID numbers": 3086, "supermarket": 5} {
		if ledgers[what] != want {
			t.Errorf("demo %s: %d, want %d", what, ledgers[what], want)
		}
	}
	all := pullAll(d, "web-dispatcher")
	closed := 0
	for _, s := range all {
		if s == "closed" {
			closed++
		}
	}
	if len(all) != 476 || closed != 469 {
		t.Errorf("demo year: %d incidents, %d closed; want 476 and 469", len(all), closed)
	}

	id := uuid.Must(uuid.NewV7()).String()
	var pr struct {
		Results []struct{ Status string }
	}
	call(t, "POST", base+"/v1/sync/push", w, map[string]any{"clientId": "phone-w1", "schemaVersion": 1, "mutations": []any{
		map[string]any{"id": 1, "name": "incident.report", "args": map[string]any{"incidentId": id, "category": "thing.manhole",
			"description": "井盖缺失", "location": map[string]float64{"lat": 38.05, "lng": 114.52}}}}}, &pr)
	if len(pr.Results) != 1 || pr.Results[0].Status != "applied" {
		t.Fatalf("report: %+v", pr)
	}
	if s := pullAll(w, "phone-w1")[id]; s != "reported" {
		t.Errorf("worker1 pulls its report: %q", s)
	}
	if s := pullAll(d, "web-dispatcher")[id]; s != "reported" {
		t.Errorf("dispatcher sees the report: %q", s)
	}
	call(t, "POST", base+"/v1/sync/push", d, map[string]any{"clientId": "web-dispatcher", "schemaVersion": 1, "mutations": []any{
		map[string]any{"id": 1, "name": "incident.accept", "args": map[string]any{"incidentId": id}}}}, &pr)
	if pr.Results[0].Status != "applied" {
		t.Fatalf("accept: %+v", pr)
	}
	stop()

	base, stop = startGridd(t, dir, nil)
	defer stop()
	var inc struct{ Status, FirstOwnerID string }
	if st := call(t, "GET", base+"/v1/incidents/"+id, login(t, base, "worker1", "phone-w1"), nil, &inc); st != 200 || inc.Status != "accepted" || inc.FirstOwnerID != "dispatcher" {
		t.Errorf("after restart: %d %+v", st, inc)
	}
	if n := len(pullAll(login(t, base, "dispatcher", "web-2"), "web-2")); n != 477 {
		t.Errorf("after restart the community holds %d incidents, want 477 (no second seeding)", n)
	}
}

func TestHelpAndBadConfig(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &out); err == nil {
		t.Error("--help should return flag.ErrHelp")
	}
	if !strings.Contains(out.String(), "GRID_MONGO_URI") {
		t.Errorf("--help: %s", out.String())
	}
	err := run(context.Background(), nil, func(k string) string { return map[string]string{"GRID_PARTITIONS": "0"}[k] }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "GRID_PARTITIONS") {
		t.Errorf("bad config: %v", err)
	}
}

// pullLedgers pulls everything a device sees and counts the demo's ledgers.
func pullLedgers(t *testing.T, base, token, device string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	cursor := ""
	for {
		var p struct {
			Cursor  string
			HasMore bool
			Changes []struct {
				Collection string
				Doc        json.RawMessage
			}
		}
		if st := call(t, "POST", base+"/v1/sync/pull", token, map[string]any{"clientId": device, "schemaVersion": 1, "cursor": cursor}, &p); st != 200 {
			t.Fatalf("pull: %d", st)
		}
		for _, c := range p.Changes {
			counts[c.Collection]++
			switch c.Collection {
			case "households":
				var h struct {
					Members []struct {
						Floating      bool
						IDCard, Phone string
					}
				}
				_ = json.Unmarshal(c.Doc, &h)
				counts["residents"] += len(h.Members)
				for _, m := range h.Members {
					if m.Floating {
						counts["floating"]++
					}
					if len(m.IDCard) == 18 && m.IDCard[6:14] == "********" {
						counts["masked ID numbers"]++
					}
				}
			case "activities":
				var a struct{ Served int }
				_ = json.Unmarshal(c.Doc, &a)
				counts["served"] += a.Served
			}
		}
		cursor = p.Cursor
		if !p.HasMore {
			return counts
		}
	}
}
