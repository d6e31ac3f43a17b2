package client_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/mobile-api/client"
)

// A crash between writing a temp file and renaming it leaves the temp file and the old
// state. Open ignores and removes the temp file; the enqueue that was being written
// never returned, so its id is not used.
func TestCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	c := open(t, client.Options{BaseURL: closedURL(t), Login: "worker1", DeviceID: "phone-1", StateDir: dir})
	enqueueReports(t, c, 3)

	// The write of mutation 4, cut off halfway, and a replica temp file.
	full, _ := json.Marshal(map[string]any{"deviceId": "phone-1", "lastMutationId": 4, "queue": []any{}})
	for name, data := range map[string][]byte{
		"outbox.json.tmp-0badc0ffee00":  full[:len(full)/2],
		"replica.json.tmp-0badc0ffee01": []byte(`{"cursor":"x","collec`),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c = open(t, client.Options{BaseURL: closedURL(t), Login: "worker1", DeviceID: "phone-1", StateDir: dir})
	if q := c.Queue(); len(q) != 3 || c.LastMutationID() != 3 {
		t.Fatalf("after the crash: %d queued, last id %d", len(q), c.LastMutationID())
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file %s left", e.Name())
		}
	}
	if id, err := c.Enqueue("incident.report", report(newID(t))); err != nil || id != 4 {
		t.Errorf("next id %d, %v; want 4", id, err)
	}
	if c.DeviceID() != "phone-1" {
		t.Errorf("device id %q", c.DeviceID())
	}
}

// A state directory belongs to one device; Enqueue refuses what the server would
// refuse for the whole batch (such a mutation could never leave the queue).
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	c := open(t, client.Options{Login: "worker1", StateDir: dir})
	if !strings.HasPrefix(c.DeviceID(), "gk-") {
		t.Errorf("generated device id %q", c.DeviceID())
	}
	if _, err := client.Open(client.Options{Login: "worker1", DeviceID: "another-phone", StateDir: dir}); err == nil {
		t.Error("opened another device's state")
	}
	again := open(t, client.Options{Login: "worker1", StateDir: dir})
	if again.DeviceID() != c.DeviceID() {
		t.Errorf("device id changed: %q → %q", c.DeviceID(), again.DeviceID())
	}
	for name, args := range map[string]any{
		"incident.teleport": map[string]string{},
		"incident.report":   []int{1},
		"incident.comment":  map[string]string{"text": strings.Repeat("x", client.MaxArgsBytes)},
	} {
		if _, err := c.Enqueue(name, args); err == nil {
			t.Errorf("enqueued %s %T", name, args)
		}
	}
	if len(c.Queue()) != 0 || c.LastMutationID() != 0 {
		t.Errorf("refusals used ids: %d queued, last id %d", len(c.Queue()), c.LastMutationID())
	}
	if _, err := client.Open(client.Options{Login: "worker1", DeviceID: "bad id!", StateDir: t.TempDir()}); err == nil {
		t.Error("opened with an invalid device id")
	}
}
