package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// 30 handsets on a flaky network, one of them reassigned halfway, and gridd restarted
// under them: every report lands exactly once and every replica converges.
func TestFleetConvergesThroughARestart(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(3)
	env := map[string]string{"GRID_URL": h.URL, "GRID_LOGIN": "admin", "GRID_PASSWORD": nodetest.Password}
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run([]string{"fleet", "--devices", "30", "--duration", "8s", "--reports", "5", "--seed", "7"},
			func(k string) string { return env[k] }, &out, &errOut)
	}()
	time.Sleep(3 * time.Second)
	h.Restart(nil)
	code := <-done
	t.Logf("stdout:\n%s", out.String())
	if code != 0 {
		t.Fatalf("fleet exit %d; stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{`devices converged:\s+30\n`, `devices diverged:\s+0\n`, `mutations enqueued:\s+150\n`,
		`applied exactly once:\s+150\n`, `duplicates detected:\s+0\n`, `lost:\s+0\n`, `reassigned:\s+fleet-\d+ from \d+ to \d+\n`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("summary does not match %q", want)
		}
	}
	if !strings.Contains(errOut.String(), "\rrun") {
		t.Errorf("no progress line on stderr: %q", errOut.String())
	}

	// Again: the users exist (409) and are reused, the reassigned one moved back to its
	// grid (else its replica would not match the grid the fleet expects).
	out.Reset()
	errOut.Reset()
	code = run([]string{"fleet", "--devices", "30", "--duration", "2s", "--reports", "2", "--seed", "7"},
		func(k string) string { return env[k] }, &out, &errOut)
	if code != 0 || !regexp.MustCompile(`applied exactly once:\s+60\n`).MatchString(out.String()) {
		t.Errorf("second run: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
}

func TestCompareReplicasFindsDivergences(t *testing.T) {
	doc := func(v int) json.RawMessage { return json.RawMessage(`{"id":"x","version":` + strconv.Itoa(v) + `}`) }
	server := map[string]json.RawMessage{"a": doc(1), "b": doc(3), "c": doc(1)}
	if d := compareReplicas(map[string]json.RawMessage{"a": doc(1), "b": doc(3), "c": doc(1)}, server); d != nil {
		t.Errorf("equal replicas: %v", d)
	}
	got := compareReplicas(map[string]json.RawMessage{"a": doc(1), "b": doc(2), "z": doc(1)}, server)
	want := []string{
		"extra incident z (version 1), not in the user's scope on the server",
		"incident b: version 2 on the handset, 3 on the server",
		"missing incident c (server version 1)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("divergences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
