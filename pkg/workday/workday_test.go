package workday

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const calendarDir = "../../schemas/calendar"

func loadYear(t *testing.T, year string) Year {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(calendarDir, "cn-"+year+".json"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(cn-%s.json): %v", year, err)
	}
	return y
}

func loadCalendar(t *testing.T) *Calendar {
	t.Helper()
	c, err := New(loadYear(t, "2025"), loadYear(t, "2026"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// at parses "2006-01-02 15:04" in Asia/Shanghai.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, Location())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseRealFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(calendarDir, "cn-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no calendar files in %s: %v", calendarDir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			y, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if want := "cn-" + strconv.Itoa(y.Year) + ".json"; filepath.Base(f) != want {
				t.Errorf("file %s holds year %d", f, y.Year)
			}
			if y.Source == "" || len(y.Holidays) == 0 || len(y.MakeupWorkdays) == 0 {
				t.Errorf("suspiciously empty year: %+v", y)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const base = `{"year":2026,"timezone":"Asia/Shanghai","source":"test",`
	tests := []struct {
		name, json, wantErr string
	}{
		{"not json", `{`, "decode year file"},
		{"trailing data", base + `"holidays":[],"makeup_workdays":[]} {}`, "trailing data"},
		{"unknown field", base + `"holidays":[],"makeup_workday":[]}`, `unknown field "makeup_workday"`},
		{"year too small", `{"year":1999}`, "year 1999 outside supported range"},
		{"year missing", `{"holidays":[]}`, "year 0 outside supported range"},
		{"wrong timezone", `{"year":2026,"timezone":"UTC"}`, `timezone "UTC"`},
		{"bad from", base + `"holidays":[{"name":"X","from":"2026-2-1","to":"2026-02-03"}]}`, `holiday "X" from "2026-2-1" is not a valid YYYY-MM-DD date`},
		{"impossible date", base + `"holidays":[{"name":"X","from":"2026-02-01","to":"2026-02-30"}]}`, `holiday "X" to "2026-02-30" is not a valid`},
		{"holiday other year", base + `"holidays":[{"name":"X","from":"2025-12-31","to":"2026-01-01"}]}`, `holiday "X" from 2025-12-31 is not in year 2026`},
		{"from after to", base + `"holidays":[{"name":"X","from":"2026-02-05","to":"2026-02-03"}]}`, `holiday "X": from 2026-02-05 is after to 2026-02-03`},
		{"no name", base + `"holidays":[{"from":"2026-02-01","to":"2026-02-03"}]}`, "holiday 2026-02-01..2026-02-03 has no name"},
		{"overlap", base + `"holidays":[{"name":"A","from":"2026-02-01","to":"2026-02-03"},{"name":"B","from":"2026-02-03","to":"2026-02-04"}]}`, `holiday "B": 2026-02-03 overlaps`},
		{"makeup malformed", base + `"makeup_workdays":["2026/02/14"]}`, `make-up workday "2026/02/14" is not a valid`},
		{"makeup other year", base + `"makeup_workdays":["2027-01-02"]}`, "make-up workday 2027-01-02 is not in year 2026"},
		{"makeup is holiday", base + `"holidays":[{"name":"X","from":"2026-02-14","to":"2026-02-15"}],"makeup_workdays":["2026-02-14"]}`, "make-up workday 2026-02-14 is also a holiday"},
		{"makeup on weekday", base + `"makeup_workdays":["2026-02-13"]}`, "make-up workday 2026-02-13 is a Friday"},
		{"makeup twice", base + `"makeup_workdays":["2026-02-14","2026-02-14"]}`, "make-up workday 2026-02-14 is listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewWith(t *testing.T) {
	y25, y26 := loadYear(t, "2025"), loadYear(t, "2026")
	if _, err := New(y26, y25, y26); err == nil || !strings.Contains(err.Error(), "year 2026 given twice") {
		t.Errorf("New with duplicate: err = %v", err)
	}
	if _, err := New(Year{Year: 2026, MakeupWorkdays: []string{"2026-02-13"}}); err == nil {
		t.Error("New accepted an invalid year")
	}

	c, err := New(y25)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := c.With(y26)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Years(); !slices.Equal(got, []int{2025}) {
		t.Errorf("original calendar changed: Years() = %v", got)
	}
	if got := c2.Years(); !slices.Equal(got, []int{2025, 2026}) {
		t.Errorf("With: Years() = %v", got)
	}

	// Replace 2026 by a year without holidays: 2026-10-01 becomes a workday.
	c3, err := c2.With(Year{Year: 2026})
	if err != nil {
		t.Fatal(err)
	}
	national := at(t, "2026-10-01 09:00")
	if ok, _ := c3.IsWorkday(national); !ok {
		t.Error("replaced year still has National Day")
	}
	if ok, _ := c2.IsWorkday(national); ok {
		t.Error("With modified the calendar it was called on")
	}
	if _, err := c2.With(Year{Year: 3000}); err == nil {
		t.Error("With accepted an invalid year")
	}
	if got, err := (&Calendar{}).With(y26); err != nil || !slices.Equal(got.Years(), []int{2026}) {
		t.Errorf("zero Calendar With: %v, %v", got, err)
	}
}

func TestIsWorkday(t *testing.T) {
	c := loadCalendar(t)
	tests := []struct {
		date string
		want bool
	}{
		{"2026-03-04", true},  // ordinary Wednesday
		{"2026-03-07", false}, // Saturday
		{"2026-03-08", false}, // Sunday
		{"2026-10-01", false}, // National Day
		{"2026-10-07", false}, // last day of National Day, a Wednesday
		{"2026-10-08", true},  // back to work
		{"2026-10-10", true},  // make-up Saturday
		{"2026-09-20", true},  // make-up Sunday
		{"2026-02-14", true},  // make-up Saturday before Spring Festival
		{"2026-02-16", false}, // Spring Festival Monday
		{"2026-02-24", true},  // first day after Spring Festival
		{"2026-02-28", true},  // make-up Saturday after Spring Festival
		{"2026-01-01", false}, // New Year
		{"2026-01-02", false}, // New Year, a Friday
		{"2026-01-04", true},  // make-up Sunday
		{"2025-12-31", true},  // Wednesday
		{"2025-01-01", false}, // New Year 2025
		{"2025-10-08", false}, // National Day and Mid-Autumn 2025
		{"2025-10-11", true},  // make-up Saturday
		{"2025-04-27", true},  // make-up Sunday
	}
	for _, tt := range tests {
		t.Run(tt.date, func(t *testing.T) {
			got, err := c.IsWorkday(at(t, tt.date+" 12:00"))
			if err != nil || got != tt.want {
				t.Errorf("IsWorkday(%s) = %v, %v; want %v", tt.date, got, err, tt.want)
			}
		})
	}

	// The date is taken in Asia/Shanghai: 2026-09-30 20:00 UTC is already
	// 2026-10-01 04:00 in Shanghai (National Day).
	if got, err := c.IsWorkday(time.Date(2026, 9, 30, 20, 0, 0, 0, time.UTC)); err != nil || got {
		t.Errorf("IsWorkday(2026-09-30T20:00Z) = %v, %v; want false", got, err)
	}
	for _, v := range []time.Time{at(t, "2024-12-31 23:59"), at(t, "2027-01-01 00:00")} {
		if _, err := c.IsWorkday(v); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("IsWorkday(%v) error = %v, want ErrOutOfRange", v, err)
		}
	}
}

func TestDue(t *testing.T) {
	c := loadCalendar(t)
	tests := []struct {
		name, t string
		n       int
		want    string
	}{
		{"ordinary weekday", "2026-03-04 10:00", 1, "2026-03-05 10:00"},
		{"Friday over weekend", "2026-03-06 16:30", 1, "2026-03-09 16:30"},
		{"Friday before Spring Festival to make-up Saturday", "2026-02-13 10:00", 1, "2026-02-14 10:00"},
		{"across Spring Festival", "2026-02-13 10:00", 2, "2026-02-24 10:00"},
		{"make-up Saturday is a working day", "2026-02-14 09:15", 1, "2026-02-24 09:15"},
		{"Sunday", "2026-03-08 15:00", 1, "2026-03-10 00:00"},
		{"Sunday n=3", "2026-03-08 15:00", 3, "2026-03-12 00:00"},
		{"Saturday just before midnight", "2026-03-07 23:59", 1, "2026-03-10 00:00"},
		{"Spring Festival holiday", "2026-02-17 11:00", 1, "2026-02-25 00:00"},
		{"National Day holiday", "2026-10-03 08:00", 2, "2026-10-10 00:00"},
		{"n=3 spanning National Day", "2026-09-29 14:00", 3, "2026-10-09 14:00"},
		{"n=3 from the day before National Day", "2026-09-30 14:00", 3, "2026-10-10 14:00"},
		{"midnight on a working day keeps clock time", "2026-03-06 00:00", 1, "2026-03-09 00:00"},
		{"year boundary", "2025-12-31 17:00", 1, "2026-01-04 17:00"},
		{"year boundary n=2", "2025-12-31 17:00", 2, "2026-01-05 17:00"},
		{"New Year holiday", "2026-01-01 10:00", 1, "2026-01-05 00:00"},
		{"New Year holiday n=2", "2026-01-02 10:00", 2, "2026-01-06 00:00"},
		{"last working day of loaded range", "2026-12-30 10:00", 1, "2026-12-31 10:00"},
		{"ends at 24:00 of the last loaded day", "2026-12-27 10:00", 4, "2027-01-01 00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Due(at(t, tt.t), tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if want := at(t, tt.want); !got.Equal(want) || got.Location() != Location() {
				t.Errorf("Due(%s, %d) = %v, want %v", tt.t, tt.n, got, want)
			}
		})
	}

	// Input in another zone: 2026-02-13 02:00 UTC is Friday 10:00 in Shanghai.
	got, err := c.Due(time.Date(2026, 2, 13, 2, 0, 0, 0, time.UTC), 2)
	if err != nil || !got.Equal(at(t, "2026-02-24 10:00")) {
		t.Errorf("Due(UTC input) = %v, %v", got, err)
	}

	errTests := []struct {
		name, t string
		n       int
	}{
		{"walk leaves loaded years", "2026-12-30 10:00", 2},
		{"start before loaded years", "2024-12-30 10:00", 1},
		{"start after loaded years", "2027-01-04 10:00", 1},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := c.Due(at(t, tt.t), tt.n); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("Due = %v, %v; want ErrOutOfRange", got, err)
			}
		})
	}
	for _, n := range []int{0, -1} {
		if _, err := c.Due(at(t, "2026-03-04 10:00"), n); err == nil || errors.Is(err, ErrOutOfRange) {
			t.Errorf("Due(n=%d) error = %v, want invalid n", n, err)
		}
	}
}

func TestWorkingDuration(t *testing.T) {
	c := loadCalendar(t)
	tests := []struct {
		name, from, to string
		want           time.Duration
	}{
		{"same working day", "2026-03-04 10:00", "2026-03-04 15:30", 5*time.Hour + 30*time.Minute},
		{"empty", "2026-03-04 10:00", "2026-03-04 10:00", 0},
		{"reversed", "2026-03-05 10:00", "2026-03-04 10:00", 0},
		{"reversed within a day", "2026-03-04 10:00", "2026-03-04 09:00", 0},
		{"weekend only", "2026-03-07 00:00", "2026-03-09 00:00", 0},
		{"Friday to Monday", "2026-03-06 10:00", "2026-03-09 10:00", 24 * time.Hour},
		{"across Spring Festival", "2026-02-13 10:00", "2026-02-24 10:00", 48 * time.Hour},
		{"whole week", "2026-03-02 00:00", "2026-03-09 00:00", 5 * 24 * time.Hour},
		{"year boundary", "2025-12-31 12:00", "2026-01-04 12:00", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.WorkingDuration(at(t, tt.from), at(t, tt.to))
			if err != nil || got != tt.want {
				t.Errorf("WorkingDuration = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := c.WorkingDuration(at(t, "2026-12-31 10:00"), at(t, "2027-01-02 10:00")); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("WorkingDuration past 2026: err = %v, want ErrOutOfRange", err)
	}
}

func TestAddWorkingDuration(t *testing.T) {
	c := loadCalendar(t)
	tests := []struct {
		name, t string
		d       time.Duration
		want    string
	}{
		{"zero", "2026-03-07 10:00", 0, "2026-03-07 10:00"},
		{"within day", "2026-03-04 10:00", 3 * time.Hour, "2026-03-04 13:00"},
		{"to end of day", "2026-03-06 10:00", 14 * time.Hour, "2026-03-07 00:00"},
		{"over weekend", "2026-03-06 10:00", 15 * time.Hour, "2026-03-09 01:00"},
		{"from a holiday", "2026-10-03 10:00", time.Hour, "2026-10-08 01:00"},
		{"back within day", "2026-03-04 10:00", -3 * time.Hour, "2026-03-04 07:00"},
		{"back over weekend", "2026-03-09 02:00", -4 * time.Hour, "2026-03-06 22:00"},
		{"back from midnight", "2026-03-07 00:00", -24 * time.Hour, "2026-03-06 00:00"},
		{"warn 8h before Spring Festival due", "2026-02-24 04:00", -8 * time.Hour, "2026-02-14 20:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.AddWorkingDuration(at(t, tt.t), tt.d)
			if err != nil || !got.Equal(at(t, tt.want)) {
				t.Errorf("AddWorkingDuration(%s, %v) = %v, %v; want %s", tt.t, tt.d, got, err, tt.want)
			}
		})
	}
	if _, err := c.AddWorkingDuration(at(t, "2026-12-31 10:00"), 15*time.Hour); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("forward past 2026: err = %v, want ErrOutOfRange", err)
	}
	if _, err := c.AddWorkingDuration(at(t, "2025-01-02 10:00"), -11*time.Hour); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("backward before 2025: err = %v, want ErrOutOfRange", err)
	}
}

// TestRoundTrip checks on random instants that AddWorkingDuration inverts
// WorkingDuration in both directions and that Due always leaves exactly
// n*24h of working time.
func TestRoundTrip(t *testing.T) {
	c := loadCalendar(t)
	rng := rand.New(rand.NewPCG(2025, 2026))
	lo := at(t, "2025-03-01 00:00") // leaves room for 10 working days either way
	span := at(t, "2026-12-01 00:00").Sub(lo)
	for range 2000 {
		start := lo.Add(time.Duration(rng.Int64N(int64(span))))
		d := time.Duration(rng.Int64N(int64(10 * 24 * time.Hour)))
		if rng.IntN(4) == 0 {
			d = d.Truncate(time.Hour) // hit day boundaries
		}

		end, err := c.AddWorkingDuration(start, d)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.WorkingDuration(start, end); err != nil || got != d {
			t.Fatalf("WorkingDuration(%v, Add(+%v) = %v) = %v, %v", start, d, end, got, err)
		}
		begin, err := c.AddWorkingDuration(start, -d)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.WorkingDuration(begin, start); err != nil || got != d {
			t.Fatalf("WorkingDuration(Add(%v, -%v) = %v, start) = %v, %v", start, d, begin, got, err)
		}

		n := 1 + rng.IntN(10)
		due, err := c.Due(start, n)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.WorkingDuration(start, due); err != nil || got != time.Duration(n)*day {
			t.Fatalf("WorkingDuration(%v, Due(n=%d) = %v) = %v, %v", start, n, due, got, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := loadCalendar(t)
	y26 := loadYear(t, "2026")
	start := at(t, "2026-02-13 10:00")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := c.Due(start, 1+i); err != nil {
				t.Error(err)
			}
			if _, err := c.With(y26); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
