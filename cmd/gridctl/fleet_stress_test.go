package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

func TestFleetStressTMP(t *testing.T) {
	h := nodetest.Start(t, func(c *node.Config, _ *node.Options) {
		c.AccessTTL = 3 * time.Second
		c.PushWait = 200 * time.Millisecond
	})
	h.Org(3)
	env := map[string]string{"GRID_URL": h.URL, "GRID_LOGIN": "admin", "GRID_PASSWORD": nodetest.Password}
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run([]string{"fleet", "--devices", "80", "--duration", "20s", "--reports", "8", "--seed", "11"},
			func(k string) string { return env[k] }, &out, &errOut)
	}()
	time.Sleep(5 * time.Second)
	h.Restart(nil)
	time.Sleep(6 * time.Second)
	h.Restart(nil)
	code := <-done
	t.Logf("exit %d stdout:\n%s", code, out.String())
	if code != 0 {
		t.Errorf("stderr tail: %s", errOut.String()[max(0, errOut.Len()-2000):])
	}
}
