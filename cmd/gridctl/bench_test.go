package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Benchmarks of the ledgers, on the embedded default. Median of importRuns runs.
const importRuns = 3

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// householdCSV writes n households of 1 to 3 residents over 5 grids, every resident
// with an ID-card and a mobile number (so every row is sealed), and returns the rows.
func householdCSV(b *testing.B, dir string, n int) (string, int) {
	r := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	sb.WriteString(strings.Join(householdColumns, ",") + "\n")
	rows := 0
	for i := 0; i < n; i++ {
		grid := nodetest.GridA(i%5 + 1)
		for m := 0; m < 1+r.IntN(3); m++ {
			first := fmt.Sprintf("130102%s%03d", time.Date(1940+r.IntN(80), 1, 1+r.IntN(365), 0, 0, 0, 0, time.UTC).Format("20060102"), r.IntN(1000))
			fmt.Fprintf(&sb, "hh-%06d,%s,%d号楼,1单元,%d,,,r-%06d-%d,居民%d,head,,,%s,1%d%09d,false,\n",
				i, grid, i%40+1, i%600+101, i, m, m, first+string(org.IDCardCheck(first)), 3+r.IntN(7), r.IntN(1000000000))
			rows++
		}
	}
	file := filepath.Join(dir, "households.csv")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return file, rows
}

// BenchmarkImport imports 100,000 households (about 200,000 CSV rows, every resident
// with sealed numbers) with `gridctl import households` into a fresh embedded gridd,
// beside the raw InsertMany of the same stored documents into a scratch collection;
// then times a grid worker's first sync of 1,000 households with their residents.
func BenchmarkImport(b *testing.B) {
	const households = 100000
	var rates, raws, ratios, syncs []float64
	for run := 0; run < importRuns; run++ {
		dir := b.TempDir()
		file, rows := householdCSV(b, dir, households)
		h := nodetest.StartEmbedded(b, filepath.Join(dir, "data"), nil)
		h.Org(5)
		start := time.Now()
		if code, out, errs := ctl(h, "admin", "import", "households", file, "--batch", "1000"); code != 0 {
			b.Fatalf("import: %d %s %s", code, out, errs)
		}
		secs := time.Since(start).Seconds()
		rates = append(rates, float64(rows)/secs)
		raw := rawInsertHouseholds(b, h)
		raws = append(raws, raw*float64(rows)/households)
		ratios = append(ratios, (float64(rows)/secs)/(raw*float64(rows)/households))

		// A worker's first sync: grid 1 holds 20,000 of them; sync a fresh grid of 1,000.
		syncs = append(syncs, firstSync(b, h, dir))
		h.Stop()
	}
	b.ReportMetric(median(rates), "import-rows/s")
	b.ReportMetric(median(raws), "raw-insertmany-rows/s")
	b.ReportMetric(median(ratios), "import/raw-ratio")
	b.ReportMetric(median(syncs), "first-sync-1000-households-ms")
}

// rawInsertHouseholds copies the stored households into a scratch collection with
// InsertMany and returns households per second.
func rawInsertHouseholds(b *testing.B, h *nodetest.Harness) float64 {
	ctx := context.Background()
	cur, err := h.Node.DB.Collection("households").Find(ctx, bson.D{})
	if err != nil {
		b.Fatal(err)
	}
	var docs []any
	for cur.Next(ctx) {
		docs = append(docs, bson.Raw(slices.Clone(cur.Current)))
	}
	coll := h.Node.DB.Collection(fmt.Sprintf("raw%d", time.Now().UnixNano()))
	defer coll.Drop(ctx)
	start := time.Now()
	for i := 0; i < len(docs); i += 1000 {
		if _, err := coll.InsertMany(ctx, docs[i:min(len(docs), i+1000)], options.InsertMany().SetOrdered(false)); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(docs)) / time.Since(start).Seconds()
}

// firstSync imports 1,000 households into a grid of their own and times a new
// worker's first sync of that grid (every page), in milliseconds.
func firstSync(b *testing.B, h *nodetest.Harness, dir string) float64 {
	grid := nodetest.GridA(9)
	admin := h.Login("admin", "bench-admin")
	if st := admin.Do("POST", "/v1/admin/units", map[string]string{"id": grid, "name": "基准网格"}, nil); st != 201 {
		b.Fatalf("unit: %d %s", st, admin.LastBody)
	}
	if st := admin.Do("POST", "/v1/admin/users", map[string]any{"login": "syncbench", "name": "基准网格员", "roles": []string{"grid_manager"},
		"unitId": grid, "password": nodetest.Password}, nil); st != 201 {
		b.Fatalf("user: %d %s", st, admin.LastBody)
	}
	var sb bytes.Buffer
	sb.WriteString(strings.Join(householdColumns, ",") + "\n")
	for i := 0; i < 1000; i++ {
		for m := 0; m < 3; m++ {
			fmt.Fprintf(&sb, "sync-%04d,%s,%d号楼,2单元,%d,,elderly_alone,s-%04d-%d,住户%d,head,female,1950-01-01,11010519491231002X,13812345678,false,\n",
				i, grid, i%20+1, i, i, m, m)
		}
	}
	file := filepath.Join(dir, "sync.csv")
	os.WriteFile(file, sb.Bytes(), 0o600)
	if code, out, errs := ctl(h, "admin", "import", "households", file); code != 0 {
		b.Fatalf("import: %d %s %s", code, out, errs)
	}
	w := h.Login("syncbench", "bench-phone")
	start := time.Now()
	got := 0
	for cursor := ""; ; {
		_, p := w.Pull(cursor, 500)
		for _, c := range p.Changes {
			if c.Collection == "households" {
				got++
			}
		}
		if cursor = p.Cursor; !p.HasMore {
			break
		}
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	if got != 1000 {
		b.Fatalf("first sync: %d households, want 1000", got)
	}
	return ms
}

// BenchmarkStatsAPI generates a district of 8 streets × 10 communities × 8 grids with
// `gridctl stats generate` and 1,000,000 items in 2025 counted into its figures, then
// times GET /v1/stats as a city leader: the district over the year, a street over a
// half year that starts and ends mid-month (day documents for its categories), and a
// grid over a month; beside the floor of one counter document read by _id. Three
// rounds of 200 requests each; medians of the rounds.
func BenchmarkStatsAPI(b *testing.B) {
	h := nodetest.StartEmbedded(b, b.TempDir(), func(c *node.Config, o *node.Options) { c.StatsSynthetic = true })
	h.Org(1)
	start := time.Now()
	code, out, errOut := ctl(h, "admin", "stats", "generate", "--district", "110106", "--items", "1000000", "--year", "2025")
	if code != 0 {
		b.Fatalf("generate: %s %s", out, errOut)
	}
	b.Logf("%sgenerated in %v", out, time.Since(start).Round(time.Second))
	city := h.Login("city", "bench-dashboard")
	queries := map[string]string{
		"district-year":    "unit=110106&from=2025-01-01&to=2025-12-31",
		"street-half-year": "unit=110106003&from=2025-03-15&to=2025-09-14",
		"grid-month":       "unit=110106003004005&from=2025-06-01&to=2025-06-30",
	}
	var check struct{ Reported int }
	if st := city.Do("GET", "/v1/stats?"+queries["district-year"], nil, &check); st != 200 || check.Reported != 1000000 {
		b.Fatalf("district: %d %d", st, check.Reported)
	}
	for name, q := range queries {
		var p50s, p99s []float64
		for round := 0; round < 3; round++ {
			var lat []time.Duration
			for i := 0; i < 200; i++ {
				t0 := time.Now()
				if st, _ := city.Raw("GET", "/v1/stats?"+q, nil, nil); st != 200 {
					b.Fatalf("%s: %d", name, st)
				}
				lat = append(lat, time.Since(t0))
			}
			p50s = append(p50s, ms(percentile(lat, 0.5)))
			p99s = append(p99s, ms(percentile(lat, 0.99)))
		}
		b.ReportMetric(median(p50s), name+"-p50-ms")
		b.ReportMetric(median(p99s), name+"-p99-ms")
	}
	// The floor: one counter document by _id (the district's year), as the API reads it.
	coll := h.Node.DB.Collection("stats")
	var p50s, p99s []float64
	for round := 0; round < 3; round++ {
		var lat []time.Duration
		for i := 0; i < 200; i++ {
			t0 := time.Now()
			if err := coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: "110106/y/2025"}}).Err(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		p50s = append(p50s, ms(percentile(lat, 0.5)))
		p99s = append(p99s, ms(percentile(lat, 0.99)))
	}
	b.ReportMetric(median(p50s), "raw-read-by-id-p50-ms")
	b.ReportMetric(median(p99s), "raw-read-by-id-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
