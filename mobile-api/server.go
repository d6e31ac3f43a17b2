// Package mobileapi is the HTTP face of gridd: the handset sync contract, the web API
// and the operational endpoints. Handlers only translate: decode, validate into
// types, make one call into services/, encode. Every route is listed in routes().
package mobileapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/schemas"
	"github.com/gridkeeper/gridkeeper/services/attachment"
	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/complaint"
	"github.com/gridkeeper/gridkeeper/services/device"
	"github.com/gridkeeper/gridkeeper/services/directory"
	"github.com/gridkeeper/gridkeeper/services/fieldsync"
	"github.com/gridkeeper/gridkeeper/services/household"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"github.com/gridkeeper/gridkeeper/services/notify"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/gridkeeper/gridkeeper/services/stats"
	"github.com/gridkeeper/gridkeeper/services/volunteer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gopkg.in/yaml.v3"
)

// Deps are the services the API calls.
type Deps struct {
	Devices     *device.Service
	Attachments *attachment.Store
	Households  *household.Service
	Auth        *auth.Service
	Sync        *fieldsync.Service
	Incidents   *incident.Service
	Config      *incident.Config
	Complaints  *complaint.Service
	Points      *volunteer.Points
	Inbox       notify.Inbox
	Prefs       *notify.Prefs
	Directory   *directory.Service
	Admin       *directory.Admin
	// Stats reads the dashboard's figures; Projector (where it runs on this instance)
	// rebuilds them; StatsChanged streams the units whose figures changed.
	Stats        *stats.Service
	Projector    *stats.Projector
	StatsChanged func(ctx context.Context) (<-chan []string, error)
	// Ready reports whether the database, NATS and the appliers are up.
	Ready func(ctx context.Context) error
	// Metrics is the registry /metrics serves.
	Metrics *prometheus.Registry
	Logger  *slog.Logger
}

// Options are the API's limits.
type Options struct {
	MaxBody    int
	BcryptCost int
	// MaxAttachment is the largest attachment upload (PUT or one PATCH chunk).
	MaxAttachment int
	AdminWait     time.Duration
	// PokeInterval is the least time between two sync events to one client.
	PokeInterval time.Duration
	// Done closes when the server shuts down (ends event streams).
	Done <-chan struct{}
	// SyntheticStats allows POST /v1/admin/stats/synthetic (benchmarks only).
	SyntheticStats bool
	// Now is the clock of computed answers such as due visits (time.Now when nil).
	Now func() time.Time
}

type server struct {
	Deps
	opt      Options
	requests *prometheus.HistogramVec
	done     <-chan struct{}
	// openapiJSON is schemas/openapi.yaml as JSON, converted once.
	openapiJSON []byte
}

// New returns the fiber app with every route.
func New(d Deps, opt Options) *fiber.App {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if opt.PokeInterval == 0 {
		opt.PokeInterval = 2 * time.Second
	}
	s := &server{Deps: d, opt: opt, done: opt.Done, openapiJSON: mustOpenAPIJSON()}
	s.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gridd_http_request_duration_seconds", Help: "HTTP requests by route and status.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"method", "route", "status"})
	if d.Metrics != nil {
		d.Metrics.MustRegister(s.requests)
	}
	app := fiber.New(fiber.Config{
		// JSON bodies are held to MaxBody by decode; attachments may be larger.
		BodyLimit:             max(opt.MaxBody, opt.MaxAttachment+4096),
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
		AppName:               "gridd",
	})
	app.Use(requestid.New())
	app.Use(s.logRequests)
	// Pull pages are repetitive JSON: gzip shrinks a first sync several times over.
	// Event streams must not be buffered by a compressor.
	app.Use(compress.New(compress.Config{Level: compress.LevelBestSpeed, Next: func(c *fiber.Ctx) bool {
		return c.Path() == "/v1/sync/events" || c.Path() == "/v1/stats/events"
	}}))
	s.routes(app)
	return app
}

func (s *server) now() time.Time {
	if s.opt.Now != nil {
		return s.opt.Now()
	}
	return time.Now()
}

// routes is the whole API surface in one place.
func (s *server) routes(app *fiber.App) {
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/openapi.json", s.openapi)
	if s.Metrics != nil {
		app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{})))
	}

	s.dashboard(app)

	v1 := app.Group("/v1")
	v1.Post("/auth/login", s.login)
	v1.Post("/auth/refresh", s.refresh)

	authed := v1.Group("", s.authenticate)
	authed.Post("/auth/logout", s.logout)
	authed.Get("/me", s.me)
	authed.Get("/me/preferences", s.getPreferences)
	authed.Put("/me/preferences", s.putPreferences)
	authed.Get("/notifications", s.notifications)
	authed.Put("/devices/:deviceId", s.putDevice)
	authed.Post("/sync/push", s.push)
	authed.Post("/sync/pull", s.pull)
	authed.Get("/sync/events", s.events)
	authed.Get("/categories", s.categories)
	authed.Get("/incidents", s.listIncidents)
	authed.Get("/incidents/:id", s.getIncident)
	authed.Get("/reports/refusals", s.refusalReport)
	authed.Get("/complaints", s.complaints)
	authed.Get("/units", s.units)
	authed.Get("/stats", s.statsReport)
	authed.Get("/stats/events", s.statsEvents)
	authed.Get("/conflicts", s.conflicts)
	authed.Get("/households/:id/personal", s.personal)
	authed.Get("/access-log", s.accessLog)
	authed.Get("/visits/due", s.dueVisits)
	authed.Post("/volunteers", s.registerVolunteer)
	authed.Post("/teams", s.createTeam)
	authed.Get("/volunteers", s.volunteers)
	authed.Get("/volunteers/:id/points", s.ledger)
	authed.Get("/supermarket", s.supermarket)
	authed.Put("/supermarket/:itemId", s.stock)
	authed.Post("/supermarket/redemptions", s.redeem)
	authed.Get("/export/households.csv", s.exportHouseholds)
	authed.Get("/export/visits.csv", s.exportVisits)
	authed.Get("/export/points.csv", s.exportPoints)
	authed.Put("/attachments/:sha256", s.putAttachment)
	authed.Head("/attachments/:sha256", s.headAttachment)
	authed.Patch("/attachments/:sha256", s.patchAttachment)
	authed.Get("/attachments/:sha256", s.getAttachment)

	admin := authed.Group("/admin", s.require(org.RoleAdmin))
	admin.Post("/units", s.createUnit)
	admin.Post("/users", s.createUser)
	admin.Post("/users/:login/move", s.moveUser)
	admin.Post("/personal-data/reseal", s.reseal)
	admin.Post("/households/import", s.importHouseholds)
	admin.Get("/rules", s.getRules)
	admin.Put("/rules", s.putRules)
	admin.Get("/config/:doc", s.getConfigDoc)
	admin.Put("/config/:doc", s.putConfigDoc)
	admin.Get("/calendar", s.getCalendar)
	admin.Put("/calendar/:year", s.putCalendarYear)
	admin.Post("/stats/rebuild", s.rebuildStats)
	admin.Post("/stats/synthetic", s.syntheticStats)
}

const (
	localActor   = "actor"
	localSession = "sid"
)

func actorOf(c *fiber.Ctx) org.Actor {
	a, _ := c.Locals(localActor).(org.Actor)
	return a
}

// authenticate checks the bearer token; 401 sends the client to refresh.
func (s *server) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	tok, ok := bytes.CutPrefix([]byte(h), []byte("Bearer "))
	if !ok || len(tok) == 0 {
		return fault.New(fault.Unauthorized, "missing_token", "send Authorization: Bearer <accessToken>")
	}
	a, sid, err := s.Auth.Verify(c.UserContext(), string(tok))
	if err != nil {
		return err
	}
	if dev := c.Get("X-Device-Id"); dev != "" && dev != a.DeviceID {
		return fault.New(fault.Unauthorized, "device_mismatch", "this token was issued to another device")
	}
	c.Locals(localActor, a)
	c.Locals(localSession, sid)
	return c.Next()
}

// require admits callers holding one of roles.
func (s *server) require(roles ...string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !actorOf(c).Has(roles...) {
			return fault.New(fault.Forbidden, "forbidden", "this role may not do that")
		}
		return c.Next()
	}
}

// decode reads a JSON body strictly: within the JSON size limit, valid UTF-8, one
// value, types as declared.
func (s *server) decode(c *fiber.Ctx, out any) error { return s.decodeUpTo(c, out, s.opt.MaxBody) }

// body returns the request body, at most limit bytes of valid UTF-8, copied out of
// fiber's buffer (which is reused once the handler returns).
func (s *server) body(c *fiber.Ctx, limit int) ([]byte, error) {
	body := c.Body()
	if len(body) > limit {
		return nil, fault.New(fault.TooLarge, "too_large", "the body is over "+strconv.Itoa(limit)+" bytes")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fault.New(fault.Invalid, "invalid_json", "a JSON body is required")
	}
	if !utf8.Valid(body) {
		return nil, fault.New(fault.Invalid, "invalid_utf8", "the body is not valid UTF-8")
	}
	return bytes.Clone(body), nil
}

// decodeUpTo is decode with another size limit.
func (s *server) decodeUpTo(c *fiber.Ctx, out any, limit int) error {
	return s.decodeWith(c, out, limit, false)
}

// decodeStrict is decode refusing members the type does not have: for settings a
// client replaces whole, where a misspelt member would silently clear one.
func (s *server) decodeStrict(c *fiber.Ctx, out any) error {
	return s.decodeWith(c, out, s.opt.MaxBody, true)
}

func (s *server) decodeWith(c *fiber.Ctx, out any, limit int, strict bool) error {
	body, err := s.body(c, limit)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(out); err != nil {
		if strict && strings.HasPrefix(err.Error(), "json: unknown field") {
			return fault.New(fault.Invalid, "invalid_json", strings.TrimPrefix(err.Error(), "json: "))
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &fault.Error{Kind: fault.Invalid, Code: "invalid_json", Message: "wrong type for " + te.Field,
				Fields: map[string]string{te.Field: "expected " + te.Type.String()}}
		}
		return fault.New(fault.Invalid, "invalid_json", "the body is not valid JSON")
	}
	if dec.More() {
		return fault.New(fault.Invalid, "invalid_json", "one JSON value expected")
	}
	return nil
}

var statusOf = map[fault.Kind]int{
	fault.Internal: 500, fault.Invalid: 400, fault.Unauthorized: 401, fault.Forbidden: 403,
	fault.NotFound: 404, fault.Conflict: 409, fault.TooLarge: 413, fault.Unprocessable: 422,
	fault.TooMany: 429, fault.Unavailable: 503, fault.UnsupportedMedia: 415,
}

var fiberCodes = map[int]string{
	400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "timeout",
	413: "too_large", 431: "headers_too_large", 503: "unavailable",
}

// errorHandler maps every error to a status and {code, message, fields}. A 5xx never
// shows the internal error; it is logged with the request id.
func (s *server) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code, ok := fiberCodes[fe.Code]
		if !ok {
			code = "http_" + strconv.Itoa(fe.Code)
		}
		return c.Status(fe.Code).JSON(fiber.Map{"code": code, "message": fe.Message})
	}
	e := fault.As(err)
	status := statusOf[e.Kind]
	body := fiber.Map{"code": e.Code, "message": e.Message}
	if len(e.Fields) > 0 {
		body["fields"] = e.Fields
	}
	for k, v := range e.Extra {
		body[k] = v
	}
	if wait, ok := e.Extra["retryAfter"].(int); ok && status == fiber.StatusTooManyRequests {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(wait))
	}
	if status >= 500 {
		s.Logger.Error("request failed", "rid", c.Locals("requestid"), "path", c.Path(), "err", err)
		if e.Kind == fault.Internal {
			body["message"] = "internal error; quote request id " + toString(c.Locals("requestid"))
		}
	}
	return c.Status(status).JSON(body)
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// logRequests logs each request with its id, caller and duration, and records it.
func (s *server) logRequests(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			return herr
		}
	}
	status := c.Response().StatusCode()
	// fiber reuses its buffers: labels that outlive the request must be copies.
	method, route := strings.Clone(c.Method()), strings.Clone(c.Route().Path)
	dur := time.Since(start)
	s.requests.WithLabelValues(method, route, strconv.Itoa(status)).Observe(dur.Seconds())
	a := actorOf(c)
	lvl := slog.LevelDebug
	if status >= 500 {
		lvl = slog.LevelError
	} else if status == 401 || status == 403 {
		lvl = slog.LevelWarn
	}
	s.Logger.Log(c.UserContext(), lvl, "http", "rid", c.Locals("requestid"), "method", c.Method(), "path", c.Path(),
		"status", status, "ms", float64(dur.Microseconds())/1000, "user", a.UserID, "unit", a.UnitID, "ip", c.IP())
	return nil
}

// mustOpenAPIJSON converts the embedded OpenAPI document to JSON; the document is
// part of the binary, so failing here is a build defect.
func mustOpenAPIJSON() []byte {
	data, err := schemas.Files.ReadFile("openapi.yaml")
	if err != nil {
		panic(err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		panic("openapi.yaml: " + err.Error())
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic("openapi.yaml: " + err.Error())
	}
	return out
}
