package schemas_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// mutationNames are the v1 mutation names of SYNC-PROTOCOL.md ("Mutation names v1").
var mutationNames = []string{
	"incident.report", "incident.accept", "incident.assign", "incident.start",
	"incident.resolve", "incident.verify", "incident.reopen", "incident.escalate",
	"incident.refuse", "incident.requestDelay", "incident.approveDelay", "incident.merge",
	"incident.comment", "incident.rate", "complaint.file", "household.create",
	"household.update", "visit.log", "volunteer.recordActivity", "patrol.checkIn",
}

// addedMutations are mutations this server adds to v1 (additive, so v1 clients are
// unaffected); each is documented in SYNC-PROTOCOL's style in the OpenAPI document.
var addedMutations = []string{"incident.handDown", "incident.takeOver", "complaint.answer"}

// document is the part of an OpenAPI 3.1 document these tests read.
type document struct {
	OpenAPI    string                `yaml:"openapi"`
	Security   []map[string][]string `yaml:"security"`
	Paths      map[string]pathItem   `yaml:"paths"`
	Components struct {
		Schemas         map[string]*schema   `yaml:"schemas"`
		Responses       map[string]*response `yaml:"responses"`
		SecuritySchemes map[string]struct {
			Type         string `yaml:"type"`
			Scheme       string `yaml:"scheme"`
			BearerFormat string `yaml:"bearerFormat"`
		} `yaml:"securitySchemes"`
	} `yaml:"components"`
}

type pathItem struct {
	Get    *operation `yaml:"get"`
	Put    *operation `yaml:"put"`
	Post   *operation `yaml:"post"`
	Patch  *operation `yaml:"patch"`
	Head   *operation `yaml:"head"`
	Delete *operation `yaml:"delete"`
}

func (p pathItem) operations() map[string]*operation {
	out := map[string]*operation{}
	for m, op := range map[string]*operation{"get": p.Get, "put": p.Put, "post": p.Post, "patch": p.Patch, "head": p.Head, "delete": p.Delete} {
		if op != nil {
			out[m] = op
		}
	}
	return out
}

type operation struct {
	OperationID string                 `yaml:"operationId"`
	Security    *[]map[string][]string `yaml:"security"` // nil: inherits the document's
	Responses   map[string]*response   `yaml:"responses"`
}

type response struct {
	Ref     string `yaml:"$ref"`
	Content map[string]struct {
		Schema *schema `yaml:"schema"`
	} `yaml:"content"`
}

type schema struct {
	Ref        string             `yaml:"$ref"`
	Type       any                `yaml:"type"` // a name, or a list of names in 3.1
	Format     string             `yaml:"format"`
	Pattern    string             `yaml:"pattern"`
	Const      any                `yaml:"const"`
	Enum       []any              `yaml:"enum"`
	Minimum    *float64           `yaml:"minimum"`
	Maximum    *float64           `yaml:"maximum"`
	MinLength  *int               `yaml:"minLength"`
	MaxLength  *int               `yaml:"maxLength"`
	MaxItems   *int               `yaml:"maxItems"`
	Required   []string           `yaml:"required"`
	Properties map[string]*schema `yaml:"properties"`
	Items      *schema            `yaml:"items"`
	AllOf      []*schema          `yaml:"allOf"`
	OneOf      []*schema          `yaml:"oneOf"`
	AnyOf      []*schema          `yaml:"anyOf"`
	If         *schema            `yaml:"if"`
	Then       *schema            `yaml:"then"`
}

var (
	loadOnce sync.Once
	raw      []byte
	doc      document
	loadErr  error
)

func load(t *testing.T) *document {
	t.Helper()
	loadOnce.Do(func() {
		raw, loadErr = os.ReadFile("openapi.yaml")
		if loadErr == nil {
			loadErr = yaml.Unmarshal(raw, &doc)
		}
	})
	if loadErr != nil {
		t.Fatalf("openapi.yaml: %v", loadErr)
	}
	return &doc
}

// resolve follows $refs to component schemas.
func (d *document) resolve(t *testing.T, s *schema) *schema {
	t.Helper()
	for i := 0; s != nil && s.Ref != ""; i++ {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		if !ok || i > 20 {
			t.Fatalf("cannot follow $ref %q", s.Ref)
		}
		next, ok := d.Components.Schemas[name]
		if !ok {
			t.Fatalf("$ref %q: no such schema", s.Ref)
		}
		s = next
	}
	return s
}

func (d *document) schema(t *testing.T, name string) *schema {
	t.Helper()
	s, ok := d.Components.Schemas[name]
	if !ok {
		t.Fatalf("components.schemas has no %s", name)
	}
	return d.resolve(t, s)
}

// props returns a schema's properties, including those of its allOf parts.
func (d *document) props(t *testing.T, s *schema) map[string]*schema {
	t.Helper()
	s = d.resolve(t, s)
	out := map[string]*schema{}
	for _, part := range s.AllOf {
		for k, v := range d.props(t, part) {
			out[k] = v
		}
	}
	for k, v := range s.Properties {
		out[k] = v
	}
	return out
}

// prop returns the resolved schema of a (dotted) property path, e.g. "location.lat".
func (d *document) prop(t *testing.T, s *schema, path string) *schema {
	t.Helper()
	for _, name := range strings.Split(path, ".") {
		p, ok := d.props(t, s)[name]
		if !ok {
			return nil
		}
		s = d.resolve(t, p)
	}
	return s
}

// alternatives is the schema itself, or the non-null members of its oneOf / anyOf
// (how 3.1 spells a nullable reference).
func (d *document) alternatives(t *testing.T, s *schema) []*schema {
	t.Helper()
	s = d.resolve(t, s)
	alts := append(slices.Clone(s.OneOf), s.AnyOf...)
	if len(alts) == 0 {
		return []*schema{s}
	}
	var out []*schema
	for _, a := range alts {
		if a = d.resolve(t, a); a.Type != "null" {
			out = append(out, a)
		}
	}
	return out
}

func enumStrings(s *schema) []string {
	var out []string
	for _, v := range s.Enum {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
	}
	slices.Sort(out)
	return out
}

func sorted(l ...string) []string {
	l = slices.Clone(l)
	slices.Sort(l)
	return l
}

func TestVersion(t *testing.T) {
	d := load(t)
	if !strings.HasPrefix(d.OpenAPI, "3.1.") {
		t.Errorf("openapi: %q, want 3.1.x", d.OpenAPI)
	}
}

func TestPaths(t *testing.T) {
	d := load(t)
	want := map[string][]string{
		"/v1/auth/login":           {"post"},
		"/v1/auth/refresh":         {"post"},
		"/v1/auth/logout":          {"post"},
		"/v1/me":                   {"get"},
		"/v1/devices/{deviceId}":   {"put"},
		"/v1/sync/push":            {"post"},
		"/v1/sync/pull":            {"post"},
		"/v1/sync/events":          {"get"},
		"/v1/categories":           {"get"},
		"/v1/incidents/{id}":       {"get"},
		"/v1/attachments/{sha256}": {"put", "head", "patch", "get"},
		"/healthz":                 {"get"},
		"/readyz":                  {"get"},
	}
	for path, methods := range want {
		t.Run(path, func(t *testing.T) {
			item, ok := d.Paths[path]
			if !ok {
				t.Fatalf("paths has no %s", path)
			}
			ops := item.operations()
			for _, m := range methods {
				op, ok := ops[m]
				if !ok {
					t.Errorf("%s has no %s operation", path, strings.ToUpper(m))
					continue
				}
				if len(op.Responses) == 0 {
					t.Errorf("%s %s lists no responses", strings.ToUpper(m), path)
				}
			}
		})
	}

	seen := map[string]string{}
	for path, item := range d.Paths {
		for m, op := range item.operations() {
			where := strings.ToUpper(m) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			} else if prev, dup := seen[op.OperationID]; dup {
				t.Errorf("operationId %q is used by %s and %s", op.OperationID, prev, where)
			}
			seen[op.OperationID] = where
		}
	}
}

func TestSecurity(t *testing.T) {
	d := load(t)
	const name = "bearer"
	s, ok := d.Components.SecuritySchemes[name]
	if !ok || s.Type != "http" || s.Scheme != "bearer" || s.BearerFormat != "JWT" {
		t.Fatalf("components.securitySchemes.%s = %+v, want http bearer JWT", name, s)
	}
	if !slices.ContainsFunc(d.Security, func(r map[string][]string) bool { _, ok := r[name]; return ok }) {
		t.Errorf("the document's security does not require %s by default", name)
	}
	public := map[string]bool{"/v1/auth/login": true, "/v1/auth/refresh": true, "/healthz": true, "/readyz": true, "/metrics": true, "/openapi.json": true,
		"/dashboard": true} // the page; its data comes from the API with a token
	for path, item := range d.Paths {
		for m, op := range item.operations() {
			open := op.Security != nil && len(*op.Security) == 0
			if open != public[path] {
				t.Errorf("%s %s: open without a token = %v, want %v", strings.ToUpper(m), path, open, public[path])
			}
		}
	}
}

// TestErrorBodies checks that every 4xx and 5xx response carries the Error body.
func TestErrorBodies(t *testing.T) {
	d := load(t)
	isError := func(s *schema) bool {
		if s == nil {
			return false
		}
		if s.Ref == "#/components/schemas/Error" {
			return true
		}
		s = d.resolve(t, s)
		return slices.ContainsFunc(s.AllOf, func(p *schema) bool { return p.Ref == "#/components/schemas/Error" })
	}
	for path, item := range d.Paths {
		for m, op := range item.operations() {
			if m == "head" {
				continue // HEAD answers carry no body
			}
			for code, r := range op.Responses {
				if code[0] != '4' && code[0] != '5' {
					continue
				}
				where := strings.ToUpper(m) + " " + path + " " + code
				if r.Ref != "" {
					name, _ := strings.CutPrefix(r.Ref, "#/components/responses/")
					if r = d.Components.Responses[name]; r == nil {
						t.Errorf("%s: $ref %q does not resolve", where, name)
						continue
					}
				}
				if !isError(r.Content["application/json"].Schema) {
					t.Errorf("%s: body is not an application/json Error", where)
				}
			}
		}
	}

	e := d.schema(t, "Error")
	for _, f := range []string{"code", "message", "fields"} {
		if _, ok := e.Properties[f]; !ok {
			t.Errorf("Error has no %s", f)
		}
	}
	if got := sorted(e.Required...); !slices.Equal(got, []string{"code", "message"}) {
		t.Errorf("Error requires %v, want [code message]", got)
	}
	gap := d.props(t, d.schema(t, "MutationGapError"))
	if _, ok := gap["lastMutationId"]; !ok {
		t.Error("MutationGapError has no lastMutationId")
	}
	push := d.Paths["/v1/sync/push"].Post
	for _, code := range []string{"400", "409", "413", "422"} {
		if push == nil || push.Responses[code] == nil {
			t.Errorf("POST /v1/sync/push does not document %s", code)
		}
	}
}

// TestRefsResolve walks the whole document: every $ref must point at something.
func TestRefsResolve(t *testing.T) {
	load(t)
	var root any
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(node any, at string)
	walk = func(node any, at string) {
		switch n := node.(type) {
		case map[string]any:
			for k, v := range n {
				if k == "$ref" {
					ref, _ := v.(string)
					if !pointerResolves(root, ref) {
						t.Errorf("%s: $ref %q does not resolve", at, ref)
					}
					continue
				}
				walk(v, at+"/"+k)
			}
		case []any:
			for _, v := range n {
				walk(v, at+"[]")
			}
		}
	}
	walk(root, "")
}

func pointerResolves(root any, ref string) bool {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	node := root
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := node.(map[string]any)
		if !ok {
			return false
		}
		if node, ok = m[tok]; !ok {
			return false
		}
	}
	return true
}

// argsSchemaName is the component holding a mutation's args: incident.requestDelay →
// IncidentRequestDelayArgs.
func argsSchemaName(mutation string) string {
	var b strings.Builder
	for _, part := range strings.Split(mutation, ".") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String() + "Args"
}

func TestMutationArgs(t *testing.T) {
	d := load(t)
	got := enumStrings(d.schema(t, "MutationName"))
	for _, n := range mutationNames {
		if !slices.Contains(got, n) {
			t.Errorf("MutationName enum lacks the v1 mutation %s", n)
		}
	}
	for _, n := range got {
		if !slices.Contains(mutationNames, n) && !slices.Contains(addedMutations, n) {
			t.Errorf("MutationName enum has %s, which is neither a v1 mutation of SYNC-PROTOCOL.md nor a documented addition", n)
		}
	}

	// Mutation binds each name to its args schema with if/then.
	bound := map[string]string{}
	for _, part := range d.schema(t, "Mutation").AllOf {
		if part.If == nil || part.Then == nil {
			continue
		}
		name, _ := d.prop(t, part.If, "name").Const.(string)
		if args := part.Then.Properties["args"]; args != nil {
			bound[name] = args.Ref
		}
	}

	for _, name := range mutationNames {
		t.Run(name, func(t *testing.T) {
			want := argsSchemaName(name)
			s := d.schema(t, want)
			if s.Type != "object" || len(s.Properties) == 0 {
				t.Errorf("%s: want an object schema with properties", want)
			}
			if len(s.Required) == 0 {
				t.Errorf("%s: requires nothing; at least the id of the record it acts on", want)
			}
			for _, r := range s.Required {
				if _, ok := s.Properties[r]; !ok {
					t.Errorf("%s: requires %s, which it does not define", want, r)
				}
			}
			if got := bound[name]; got != "#/components/schemas/"+want {
				t.Errorf("Mutation binds %s to args %q, want #/components/schemas/%s", name, got, want)
			}
		})
	}
}

func TestIncidentReportArgs(t *testing.T) {
	d := load(t)
	s := d.schema(t, "IncidentReportArgs")
	for _, f := range []string{"incidentId", "category", "description", "location"} {
		if !slices.Contains(s.Required, f) {
			t.Errorf("IncidentReportArgs does not require %s", f)
		}
	}
	for _, f := range []string{"requester", "gridId", "photos", "urgent"} {
		if slices.Contains(s.Required, f) {
			t.Errorf("IncidentReportArgs requires %s, which is optional", f)
		}
	}
	checks := map[string]func(*schema) bool{
		"incidentId":     func(p *schema) bool { return p.Format == "uuid" },
		"category":       func(p *schema) bool { return p.Type == "string" },
		"description":    func(p *schema) bool { return isInt(p.MinLength, 1) && isInt(p.MaxLength, 2000) },
		"location.lat":   func(p *schema) bool { return p.Type == "number" },
		"location.lng":   func(p *schema) bool { return p.Type == "number" },
		"photos":         func(p *schema) bool { return p.Type == "array" && isInt(p.MaxItems, 9) },
		"requester.name": func(p *schema) bool { return p.Type == "string" },
		"requester.phone": func(p *schema) bool {
			return p.Type == "string"
		},
		"urgent": func(p *schema) bool { return p.Type == "boolean" },
		"gridId": func(p *schema) bool { return p.Type == "string" },
	}
	for path, ok := range checks {
		p := d.prop(t, s, path)
		if p == nil {
			t.Errorf("IncidentReportArgs has no %s", path)
		} else if !ok(p) {
			t.Errorf("IncidentReportArgs.%s has the wrong type or bounds", path)
		}
	}
	if photos := d.prop(t, s, "photos"); photos != nil && photos.Items != nil {
		if p := d.resolve(t, photos.Items).Pattern; p != "^[0-9a-f]{64}$" {
			t.Errorf("IncidentReportArgs.photos items pattern %q, want lower-case hex SHA-256", p)
		}
	}
}

func isInt(p *int, want int) bool { return p != nil && *p == want }

// TestIncidentFields checks the binding field names of the incident record.
func TestIncidentFields(t *testing.T) {
	d := load(t)
	inc := d.schema(t, "Incident")
	for _, f := range []string{"id", "status", "level", "unitId", "gridId", "category",
		"description", "location", "photos", "urgent", "reporterId", "firstOwnerId",
		"assigneeId", "dueAt", "overdue", "createdAt", "updatedAt", "history"} {
		if d.prop(t, inc, f) == nil {
			t.Errorf("Incident has no binding field %s", f)
		}
	}
	wantStatus := sorted("reported", "accepted", "assigned", "in_progress", "delayed",
		"resolved", "closed", "refused", "duplicate")
	if st := d.prop(t, inc, "status"); st == nil || !slices.Equal(enumStrings(st), wantStatus) {
		t.Errorf("Incident.status enum, want exactly %v", wantStatus)
	}
	if lv := d.prop(t, inc, "level"); lv == nil || lv.Minimum == nil || *lv.Minimum != 1 || lv.Maximum == nil || *lv.Maximum != 5 {
		t.Error("Incident.level must be bounded 1..5")
	}
	for _, f := range []string{"location.lat", "location.lng"} {
		if d.prop(t, inc, f) == nil {
			t.Errorf("Incident has no %s", f)
		}
	}
	h := d.prop(t, inc, "history")
	if h == nil || h.Items == nil {
		t.Fatal("Incident.history is not an array")
	}
	entry := d.props(t, h.Items)
	for _, f := range []string{"at", "by", "action", "from", "to", "reason"} {
		if _, ok := entry[f]; !ok {
			t.Errorf("Incident.history[] has no %s", f)
		}
	}
}

// TestSyncShapes checks the field names and enums SYNC-PROTOCOL.md fixes for the sync
// bodies.
func TestSyncShapes(t *testing.T) {
	d := load(t)
	fields := map[string][]string{
		"LoginRequest":       {"login", "password", "deviceId", "platform", "appVersion"},
		"RefreshRequest":     {"refreshToken", "deviceId"},
		"TokenPair":          {"accessToken", "refreshToken", "expiresIn", "user"},
		"User":               {"id", "name", "roles", "unitId"},
		"DeviceRegistration": {"pushToken", "platform", "appVersion", "locale"},
		"PushRequest":        {"clientId", "schemaVersion", "mutations"},
		"Mutation":           {"id", "name", "args", "clientTime"},
		"PushResponse":       {"lastMutationId", "results"},
		"MutationResult":     {"id", "status", "error", "changes"},
		"PullRequest":        {"clientId", "schemaVersion", "cursor", "limit"},
		"PullResponse": {"cursor", "hasMore", "reset", "lastMutationId", "changes",
			"mutationResults", "scopes", "conflicts", "progress"},
		"Change":      {"collection", "op", "id", "version", "doc"},
		"ScopeStatus": {"scope", "status"},
		"Progress":    {"remaining", "total"},
		"Category":    {"code", "names", "defaultLevel", "special", "subcategories"},
		"Location":    {"lat", "lng"},
	}
	for name, want := range fields {
		t.Run(name, func(t *testing.T) {
			got := d.props(t, d.schema(t, name))
			for _, f := range want {
				if _, ok := got[f]; !ok {
					t.Errorf("%s has no %s", name, f)
				}
			}
		})
	}

	enums := map[string][]string{
		"MutationResult.status": {"applied", "rejected", "pending"},
		"Change.op":             {"put", "del"},
		"ScopeStatus.status":    {"active", "removed"},
	}
	for path, want := range enums {
		t.Run(path, func(t *testing.T) {
			name, field, _ := strings.Cut(path, ".")
			p := d.prop(t, d.schema(t, name), field)
			if p == nil {
				t.Fatalf("%s is missing", path)
			}
			if got := enumStrings(p); !slices.Equal(got, sorted(want...)) {
				t.Errorf("%s enum = %v, want %v", path, got, sorted(want...))
			}
		})
	}

	// Incidents in a pull are Incident records.
	var docRef string
	for _, part := range d.schema(t, "Change").AllOf {
		if part.Then != nil && part.Then.Properties["doc"] != nil {
			docRef = part.Then.Properties["doc"].Ref
		}
	}
	if docRef != "#/components/schemas/Incident" {
		t.Errorf("Change does not bind incidents' doc to Incident (got %q)", docRef)
	}
	// Nullable fields are spelled the 3.1 way and still reach a real schema.
	for _, f := range []string{"gridId", "requester"} {
		if alts := d.alternatives(t, d.prop(t, d.schema(t, "Incident"), f)); len(alts) != 1 {
			t.Errorf("Incident.%s: want one non-null alternative, got %d", f, len(alts))
		}
	}
}

// TestCategoriesFileFitsSchema keeps categories.json, which GET /v1/categories serves,
// and the Category schema in step: every entry has the required fields and no field
// the schema does not document.
func TestCategoriesFileFitsSchema(t *testing.T) {
	d := load(t)
	b, err := os.ReadFile("categories.json")
	if err != nil {
		t.Skipf("no categories.json: %v", err)
	}
	var file map[string]any
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("categories.json: %v", err)
	}
	list := d.schema(t, "CategoryList")
	for k := range file {
		if _, ok := list.Properties[k]; !ok {
			t.Errorf("categories.json has top-level %q, which CategoryList does not document", k)
		}
	}
	cat := d.schema(t, "Category")
	var check func(entries any, at string)
	check = func(entries any, at string) {
		l, ok := entries.([]any)
		if !ok {
			t.Fatalf("categories.json %s: not a list", at)
		}
		for i, e := range l {
			m, ok := e.(map[string]any)
			if !ok {
				t.Fatalf("categories.json %s[%d]: not an object", at, i)
			}
			where := fmt.Sprintf("%s[%d] (%v)", at, i, m["code"])
			for _, r := range cat.Required {
				if _, ok := m[r]; !ok {
					t.Errorf("categories.json %s: no %s", where, r)
				}
			}
			for k := range m {
				if _, ok := cat.Properties[k]; !ok {
					t.Errorf("categories.json %s: field %q is not in the Category schema", where, k)
				}
			}
			if lv, ok := m["defaultLevel"].(float64); ok && (lv < 1 || lv > 5) {
				t.Errorf("categories.json %s: defaultLevel %v outside 1..5", where, lv)
			}
			if subs, ok := m["subcategories"]; ok {
				check(subs, where+".subcategories")
			}
		}
	}
	check(file["categories"], "categories")
}
