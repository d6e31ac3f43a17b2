package main

import (
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// gridctl stats: generate a district and count made-up items into its figures (only
// where the server allows it, only for an admin), show them, and rebuild — which, with
// no incident behind them, takes them out again.
func TestGridctlStats(t *testing.T) {
	// Its own embedded FerretDB, indexed by _id like the default deployment: the
	// counters of a generated district are thousands of documents.
	h := nodetest.StartEmbedded(t, t.TempDir(), func(c *node.Config, o *node.Options) { c.StatsSynthetic = true })
	h.Org(1)
	code, out, errOut := ctl(h, "admin", "stats", "generate", "--district", "110106", "--items", "5000", "--year", "2025",
		"--streets", "2", "--communities", "1", "--grids", "2")
	if code != 0 || !strings.Contains(out, "units: 10 made") || !strings.Contains(out, "counted 5000 made-up items of 2025") {
		t.Fatalf("generate: %d %s %s", code, out, errOut)
	}
	code, out, errOut = ctl(h, "admin", "stats", "show", "--unit", "110106", "--from", "2025-01-01", "--to", "2025-12-31")
	if code != 0 || !strings.Contains(out, "of 5000;") || !strings.Contains(out, "110106001") || !strings.Contains(out, "110106002") {
		t.Fatalf("show: %d %s %s", code, out, errOut)
	}
	t.Log(out)
	var r struct {
		Reported int
		ByUnit   []struct{ Reported int }
		ByDay    []struct{ Reported int }
	}
	admin := h.Login("admin", "adm")
	if st := admin.Do("GET", "/v1/stats?unit=110106&from=2025-01-01&to=2025-12-31", nil, &r); st != 200 || r.Reported != 5000 ||
		len(r.ByUnit) != 2 || r.ByUnit[0].Reported+r.ByUnit[1].Reported != 5000 || len(r.ByDay) != 365 {
		t.Errorf("figures: %d %+v", st, r.Reported)
	}
	code, out, _ = ctl(h, "admin", "stats", "show", "--unit", "110106001", "--from", "2025-01-01", "--to", "2025-12-31", "--csv", "units")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.Contains(lines[1], "110106001001") {
		t.Errorf("CSV of the street's communities: %d %q", code, out)
	}
	// Refused: a leader; a bad count; a unit without grids.
	if code, _, errOut := ctl(h, "district", "stats", "generate", "--district", "110105", "--items", "10"); code == 0 || !strings.Contains(errOut, "403") {
		t.Errorf("a leader generates: %d %s", code, errOut)
	}
	for _, body := range []map[string]any{{"unit": "110106", "items": 0, "year": 2025}, {"unit": "110106", "items": 10, "year": 1900},
		{"unit": "110106", "items": "many", "year": 2025}, {"unit": "110107", "items": 10, "year": 2025}} {
		if st := admin.Do("POST", "/v1/admin/stats/synthetic", body, nil); st != 400 {
			t.Errorf("synthetic %v: %d %s", body, st, admin.LastBody)
		}
	}
	// A rebuild counts the stored incidents only: the made-up items go.
	code, out, _ = ctl(h, "admin", "stats", "rebuild")
	if code != 0 || !strings.Contains(out, "rebuilt from 0 incidents") || strings.Contains(out, " 0 differed") {
		t.Errorf("rebuild: %d %s", code, out)
	}
	if st := admin.Do("GET", "/v1/stats?unit=110106&from=2025-01-01&to=2025-12-31", nil, &r); st != 200 || r.Reported != 0 {
		t.Errorf("after the rebuild: %d %d", st, r.Reported)
	}
}

// Without GRID_STATS_SYNTHETIC no made-up item is ever counted.
func TestGridctlStatsGenerateIsOffByDefault(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	code, _, errOut := ctl(h, "admin", "stats", "generate", "--district", "110106", "--items", "10", "--streets", "1", "--communities", "1", "--grids", "1")
	if code == 0 || !strings.Contains(errOut, "GRID_STATS_SYNTHETIC") {
		t.Errorf("generate without permission: %d %s", code, errOut)
	}
}
