package node_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/notify/notifytest"
)

// Sync pokes through the real firebase SDK against a fake FCM: a burst of 50 changes
// in a grid reaches each device whose scope holds it as a few coalesced pokes, and no
// other device; a user moved to another unit is poked at once; a token FCM calls
// UNREGISTERED is dropped from the device's registration and not used again.
func TestSyncPokesThroughFCM(t *testing.T) {
	fake := notifytest.NewFCM(t)
	const interval = 400 * time.Millisecond
	h := nodetest.Start(t, func(c *node.Config, o *node.Options) {
		c.PokeInterval = interval
		o.Sender = fake.Sender(t)
	})
	h.Org(2)
	w := h.Login("worker1", "phone-1")
	d := h.Login("dispatcher", "desk")
	b := h.Login("workerb", "phone-b")
	for c, tok := range map[*nodetest.Client]string{w: "tok-1", d: "tok-d", b: "tok-b"} {
		if st := c.Do("PUT", "/v1/devices/"+c.Device, map[string]any{"pushToken": tok, "platform": "android", "appVersion": "1.0"}, nil); st != 200 {
			t.Fatalf("register %s: %d", c.Device, st)
		}
	}
	waitFor(t, "the poker to watch 3 devices", func() bool { return h.Node.Poker.Watching() == 3 })

	start := time.Now()
	for i := 0; i < 50; i++ {
		if _, r := w.Push(w.Queue([]string{"incident.report"}, []any{nodetest.Report(newID(t))})); r.Results[0].Status != "applied" {
			t.Fatalf("report %d: %+v", i, r)
		}
	}
	time.Sleep(2 * interval)
	burst := time.Since(start)
	got := fake.PerTokenOf("sync")
	most := int(burst/interval) + 1
	for _, tok := range []string{"tok-1", "tok-d"} {
		if got[tok] < 1 || got[tok] > most {
			t.Errorf("%s: %d pokes for 50 changes in %v; want 1..%d", tok, got[tok], burst.Round(time.Millisecond), most)
		}
	}
	if got["tok-b"] != 0 {
		t.Errorf("a device of another community was poked %d times", got["tok-b"])
	}
	for _, r := range fake.Requests() {
		if r.Data["type"] == "sync" && len(r.Data) != 1 {
			t.Errorf("poke data: %v", r.Data)
		}
	}
	t.Logf("50 changes in %v: %d and %d pokes (interval %v)", burst.Round(time.Millisecond), got["tok-1"], got["tok-d"], interval)

	// A move changes the scope of the moved user's devices: they are poked.
	admin := h.Login("admin", "admin-desk")
	if st := admin.Do("POST", "/v1/admin/users/workerb/move", map[string]string{"unitId": nodetest.GridA(2)}, nil); st != 200 {
		t.Fatalf("move: %d", st)
	}
	waitFor(t, "a poke to the moved worker's device", func() bool { return fake.PerTokenOf("sync")["tok-b"] >= 1 })

	// A dead token is dropped from the registration, and not used again.
	fake.Unregister("tok-d")
	before := fake.PerTokenOf("sync")
	w.Push(w.Queue([]string{"incident.report"}, []any{nodetest.Report(newID(t))}))
	kv, err := h.Node.JS.KeyValue(context.Background(), h.Node.Names.DevicesBucket())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead token to be dropped", func() bool {
		e, err := kv.Get(context.Background(), "desk")
		if err != nil {
			return false
		}
		var dev struct{ PushToken *string }
		_ = json.Unmarshal(e.Value(), &dev)
		return dev.PushToken == nil
	})
	waitFor(t, "the poker to stop watching the dead device", func() bool { return h.Node.Poker.Watching() == 2 })
	w.Push(w.Queue([]string{"incident.report"}, []any{nodetest.Report(newID(t))}))
	time.Sleep(2 * interval)
	after := fake.PerTokenOf("sync")
	if after["tok-1"] <= before["tok-1"] {
		t.Errorf("the worker's device was not poked for later changes")
	}
	if h.Node.Poker.Dropped.Load() != 1 {
		t.Errorf("dropped tokens: %d, want 1", h.Node.Poker.Dropped.Load())
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
