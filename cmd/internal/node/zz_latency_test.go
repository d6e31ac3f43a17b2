package node_test

import (
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

func TestZZPushLatency(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	w := h.Login("worker1", "w1")
	for i := 0; i < 15; i++ {
		t0 := time.Now()
		mustMove(t, w, "report", nodetest.Report(newID(t)))
		t.Logf("push %d: %v", i, time.Since(t0))
		time.Sleep(10 * time.Millisecond)
	}
}
