package mobileapi

import (
	"context"
	"embed"
	"encoding/csv"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/stats"
)

// dashboardFiles is the district dashboard: a page, its script and style, and Apache
// ECharts as `make web` copies it from the npm package pinned in
// dashboard/package-lock.json. Nothing is fetched from elsewhere.
//
//go:embed dashboard/assets
var dashboardFiles embed.FS

// Dashboard returns the dashboard's files.
func Dashboard() fs.FS {
	sub, err := fs.Sub(dashboardFiles, "dashboard/assets")
	if err != nil {
		panic(err)
	}
	return sub
}

// dashboard serves /dashboard and its assets; the page logs in with the API.
func (s *server) dashboard(app *fiber.App) {
	app.Get("/dashboard", func(c *fiber.Ctx) error {
		if c.Path() != "/dashboard" { // the route also matches "/dashboard/"
			return c.Next()
		}
		return c.Redirect("/dashboard/", fiber.StatusMovedPermanently)
	})
	app.Use("/dashboard/", func(c *fiber.Ctx) error {
		c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'")
		c.Set("X-Content-Type-Options", "nosniff")
		c.Set("Referrer-Policy", "no-referrer")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Next()
	}, filesystem.New(filesystem.Config{Root: http.FS(Dashboard()), Index: "index.html"}))
}

// statsReport answers GET /v1/stats: the figures of a unit of the caller's subtree for
// a period, as JSON, or one table as CSV (format=csv&table=…).
func (s *server) statsReport(c *fiber.Ctx) error {
	q := stats.Request{Unit: c.Query("unit"), From: c.Query("from"), To: c.Query("to"), Lang: c.Query("lang")}
	format, table := c.Query("format", "json"), c.Query("table")
	if format != "json" && format != "csv" {
		return fault.New(fault.Invalid, "invalid_request", "format: json or csv")
	}
	if format == "csv" && !slices.Contains(stats.Tables, table) {
		return fault.New(fault.Invalid, "invalid_request", "table: one of summary, units, categories, days, months, overdue")
	}
	r, err := s.Stats.Report(c.UserContext(), actorOf(c), q)
	if err != nil {
		return err
	}
	if format == "json" {
		return c.JSON(r)
	}
	rows, err := r.CSV(table)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="stats-`+r.Unit+`-`+table+`-`+r.From+`-`+r.To+`.csv"`)
	// A byte-order mark, so spreadsheet programs read the Chinese names as UTF-8.
	if _, err := c.Write([]byte("\ufeff")); err != nil {
		return err
	}
	w := csv.NewWriter(c)
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	return nil
}

// statsEvents holds GET /v1/stats/events?unit= open as server-sent events:
// `event: stats` when the figures of the unit (or below it) changed, at most once a
// second; a comment line as heartbeat.
func (s *server) statsEvents(c *fiber.Ctx) error {
	a := actorOf(c)
	unit, err := a.Area(c.Query("unit"))
	if err != nil {
		return err
	}
	if s.StatsChanged == nil {
		return fault.New(fault.Unavailable, "unavailable", "live updates are not available")
	}
	ctx, cancel := context.WithCancel(context.Background())
	changes, err := s.StatsChanged(ctx)
	if err != nil {
		cancel()
		return err
	}
	msgs := make(chan string)
	go func() {
		defer close(msgs)
		var pending <-chan time.Time
		for {
			select {
			case units, ok := <-changes:
				if !ok {
					return
				}
				if pending == nil && slices.Contains(units, unit) {
					pending = time.After(time.Second)
				}
			case <-pending:
				pending = nil
				data, _ := json.Marshal(map[string]string{"unit": unit, "at": time.Now().UTC().Format(time.RFC3339)})
				select {
				case msgs <- "event: stats\ndata: " + string(data) + "\n\n":
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	s.holdStream(c, cancel, "", msgs)
	return nil
}

// rebuildStats answers POST /v1/admin/stats/rebuild: every counter recomputed from the
// stored incidents, and how many differed.
func (s *server) rebuildStats(c *fiber.Ctx) error {
	if s.Projector == nil {
		return fault.New(fault.Unavailable, "unavailable", "the statistics projector does not run on this instance")
	}
	r, err := s.Projector.Rebuild(c.UserContext())
	if err != nil {
		return fault.Wrap(err, "rebuild statistics")
	}
	return c.JSON(r)
}

type syntheticRequest struct {
	Unit  string `json:"unit"`
	Items int    `json:"items"`
	Year  int    `json:"year"`
	Seed  uint64 `json:"seed"`
}

// syntheticStats answers POST /v1/admin/stats/synthetic: made-up items counted into
// the figures of a unit's grids, for benchmarks; refused unless the server allows it.
func (s *server) syntheticStats(c *fiber.Ctx) error {
	if !s.opt.SyntheticStats {
		return fault.New(fault.Forbidden, "forbidden", "synthetic figures are off (GRID_STATS_SYNTHETIC)")
	}
	var r syntheticRequest
	if err := s.decode(c, &r); err != nil {
		return err
	}
	rep, err := s.Stats.Synthetic(c.UserContext(), actorOf(c), r.Unit, r.Items, r.Year, r.Seed)
	if err != nil {
		return err
	}
	return c.JSON(rep)
}
