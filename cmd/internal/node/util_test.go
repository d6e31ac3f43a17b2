package node_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// pushOne pushes one mutation and returns its outcome status and error code.
func pushOne(t *testing.T, c *nodetest.Client, name string, args map[string]any) (string, string) {
	t.Helper()
	st, r := c.Push(c.Queue([]string{name}, []any{args}))
	if st != 200 || len(r.Results) != 1 {
		t.Fatalf("%s by %s: %d %s", name, c.Device, st, c.LastBody)
	}
	if e := r.Results[0].Error; e != nil {
		return r.Results[0].Status, e.Code
	}
	return r.Results[0].Status, ""
}
