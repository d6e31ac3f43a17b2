package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	yaml "github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
)

func openapiDoc(t *testing.T) libopenapi.Document {
	t.Helper()
	data, err := os.ReadFile("../../../schemas/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// The OpenAPI document is valid OpenAPI 3.1 and every example in it validates against
// its schema (checked with libopenapi-validator).
func TestOpenAPIDocumentAndExamples(t *testing.T) {
	doc := openapiDoc(t)
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s", e.Error())
		}
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	sv := schema_validation.NewSchemaValidator()
	checked := 0
	check := func(where string, sp *base.SchemaProxy, ex *yaml.Node) {
		if sp == nil || ex == nil {
			return
		}
		var val any
		if err := ex.Decode(&val); err != nil {
			t.Errorf("%s: example does not decode: %v", where, err)
			return
		}
		if s, ok := val.(string); ok && sp.Schema() != nil && len(sp.Schema().Type) > 0 && sp.Schema().Type[0] != "string" {
			_ = s // a string example of a non-string body (e.g. an event stream) is prose
			return
		}
		payload, _ := json.Marshal(val)
		if ok, verrs := sv.ValidateSchemaBytes(sp.Schema(), payload); !ok {
			for _, e := range verrs {
				t.Errorf("%s: example %s: %s", where, payload, e.Error())
			}
		}
		checked++
	}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			where := strings.ToUpper(method) + " " + path
			if op.RequestBody != nil {
				for mt, media := range op.RequestBody.Content.FromOldest() {
					check(where+" request "+mt, media.Schema, media.Example)
					for _, ex := range media.Examples.FromOldest() {
						check(where+" request "+mt, media.Schema, ex.Value)
					}
				}
			}
			if op.Responses == nil {
				continue
			}
			for code, resp := range op.Responses.Codes.FromOldest() {
				for mt, media := range resp.Content.FromOldest() {
					check(fmt.Sprintf("%s %s %s", where, code, mt), media.Schema, media.Example)
					for _, ex := range media.Examples.FromOldest() {
						check(fmt.Sprintf("%s %s %s", where, code, mt), media.Schema, ex.Value)
					}
				}
			}
		}
	}
	for name, sp := range model.Model.Components.Schemas.FromOldest() {
		if s := sp.Schema(); s != nil {
			for _, ex := range s.Examples {
				check("schema "+name, sp, ex)
			}
		}
	}
	t.Logf("%d examples validated", checked)
}

// recorder keeps every request and answer a client makes, bodies included.
type recorder struct {
	mu    sync.Mutex
	pairs []pair
}

type pair struct {
	req      *http.Request
	reqBody  []byte
	resp     *http.Response
	respBody []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	r.mu.Lock()
	r.pairs = append(r.pairs, pair{req, body, resp, rb})
	r.mu.Unlock()
	return resp, nil
}

// The server keeps the contract: real requests and answers of the main flows, good
// and bad, validate against the OpenAPI document.
func TestServerKeepsTheOpenAPIContract(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	rec := &recorder{}
	w := h.Login("worker1", "phone-c")
	d := h.Login("dispatcher", "web-c")
	anon := h.Anon()
	for _, c := range []*nodetest.Client{w, d, anon} {
		c.HTTP = &http.Client{Transport: rec}
	}
	anon.Do("POST", "/v1/auth/login", map[string]string{"login": "worker1", "password": "wrong-password", "deviceId": "x"}, nil)
	anon.Do("GET", "/v1/me", nil, nil)
	anon.Do("GET", "/healthz", nil, nil)
	anon.Do("GET", "/readyz", nil, nil)
	w.Do("GET", "/v1/me", nil, nil)
	w.Do("GET", "/v1/categories", nil, nil)
	w.Do("GET", "/v1/units", nil, nil)
	w.Do("PUT", "/v1/devices/phone-c", map[string]any{"pushToken": "fcm-token", "platform": "android", "appVersion": "1.0", "locale": "zh-CN"}, nil)
	w.Do("PUT", "/v1/devices/other", map[string]any{"platform": "android", "appVersion": "1.0"}, nil)
	id := newID(t)
	w.Push(w.Queue([]string{"incident.report"}, []any{nodetest.Report(id)}))
	w.Push([]nodetest.Mutation{{ID: 9, Name: "incident.report", Args: nodetest.Report(newID(t))}}) // gap
	w.Raw("POST", "/v1/sync/push", []byte(`{"clientId":`), nil)                                    // malformed
	w.Pull("", 100)
	d.Push(d.Queue([]string{"incident.accept"}, []any{map[string]string{"incidentId": id}}))
	d.Do("GET", "/v1/incidents/"+id, nil, nil)
	d.Do("GET", "/v1/incidents/"+newID(t), nil, nil) // 404
	d.Do("GET", "/v1/conflicts", nil, nil)
	rec.mu.Lock()
	pairs := rec.pairs
	rec.mu.Unlock()
	v, errs := validator.NewValidator(openapiDoc(t))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(pairs) < 15 {
		t.Fatalf("only %d exchanges recorded", len(pairs))
	}
	for _, p := range pairs {
		p.req.Body = io.NopCloser(bytes.NewReader(p.reqBody))
		p.resp.Body = io.NopCloser(bytes.NewReader(p.respBody))
		if ok, verrs := v.ValidateHttpResponse(p.req, p.resp); !ok {
			for _, e := range verrs {
				t.Errorf("%s %s → %d: %s (%.200s)", p.req.Method, p.req.URL.Path, p.resp.StatusCode, e.Error(), p.respBody)
			}
		}
	}
}
