package node_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// noBody are the routes that take no request body (an attack body is ignored).
var noBody = map[string]bool{
	"POST /v1/auth/logout":                true,
	"POST /v1/admin/stats/rebuild":        true,
	"POST /v1/admin/personal-data/reseal": true,
	"PUT /v1/attachments/:sha256":         true, // bytes, not JSON: hash-checked (TestAttachments)
	"PATCH /v1/attachments/:sha256":       true,
}

// Every route that takes a body, taken from the route table (a new route is covered
// without a change here), is sent the same hostile bodies by an admin of the whole
// city: too large, nested 100,000 deep, invalid UTF-8, MongoDB operators in place of
// values, an array instead of an object, and nothing. Each answer is a clear 4xx error
// ({code, message}), never a success or a 5xx, and nothing is stored: every collection
// and the change feed are as they were.
func TestHostileBodiesOnEveryRoute(t *testing.T) {
	h := nodetest.Start(t, func(c *node.Config, _ *node.Options) { c.MaxBody = 64 << 10 })
	h.Org(1)
	admin := h.Login("admin", "adm-attack")
	ctx := context.Background()
	snapshot := func() map[string]int64 {
		out := map[string]int64{}
		names, err := h.Node.DB.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			c, err := h.Node.DB.Collection(n).CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			out[n] = c
		}
		info, err := h.Node.JS.Stream(ctx, h.Node.Names.ChgStream())
		if err != nil {
			t.Fatal(err)
		}
		si, err := info.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out["CHG.lastSeq"] = int64(si.State.LastSeq)
		return out
	}
	bodies := map[string][]byte{
		"too large":     []byte(`{"x":"` + strings.Repeat("a", 70<<10) + `"}`),
		"deeply nested": []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)),
		"invalid UTF-8": []byte("{\"name\":\"\xff\xfe\",\"id\":\"\xc3\x28\"}"),
		"operators":     []byte(`{"id":{"$ne":null},"login":{"$gt":""},"name":{"$where":"sleep(100)"},"unit":{"$regex":".*"},"items":{"$gt":0}}`),
		"array":         []byte(`[{"id":"x"}]`),
		"empty":         []byte(``),
		"not JSON":      []byte(`id=1&name=x`),
	}
	param := regexp.MustCompile(`:(\w+)`)
	before := snapshot()
	checked := 0
	for _, r := range h.Node.App.GetRoutes(true) {
		if r.Method != "POST" && r.Method != "PUT" && r.Method != "PATCH" {
			continue
		}
		key := r.Method + " " + r.Path
		if noBody[key] {
			continue
		}
		path := param.ReplaceAllStringFunc(r.Path, func(p string) string {
			switch p {
			case ":year":
				return "2027"
			case ":doc":
				return "visits"
			case ":login":
				return "worker1"
			}
			return "x1"
		})
		for name, body := range bodies {
			st, resp := admin.Raw(r.Method, path, body, nil)
			var e errBody
			_ = jsonUnmarshal(resp, &e)
			if st < 400 || st >= 500 || e.Code == "" || e.Message == "" {
				t.Errorf("%s with a %s body: %d %.200s", key, name, st, resp)
			}
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("only %d routes with bodies checked", checked)
	}
	after := snapshot()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %d before, %d after the hostile bodies", k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("a new collection %s after the hostile bodies", k)
		}
	}
	t.Logf("%d routes × %d hostile bodies refused, nothing stored", checked, len(bodies))
}
