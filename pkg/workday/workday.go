// Package workday owns the Chinese working-day calendar used for government
// deadlines: the official year files (public holidays and make-up workdays
// published by the State Council), the rule deciding which dates are working
// days, and working-time arithmetic on top of it (due times, working
// durations).
//
// A working day is Monday to Friday, minus public holidays, plus make-up
// workdays (调休上班). Calendar dates are always taken in Asia/Shanghai, see
// [Location]. Every working day counts its full 24 hours of working time.
package workday

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// ErrOutOfRange is wrapped by errors for dates whose year is not loaded.
var ErrOutOfRange = errors.New("workday: date outside the loaded calendar years")

// Supported range of calendar years. Asia/Shanghai has had no daylight saving
// time since 1991, so every day in this range is exactly 24 hours long.
const (
	MinYear = 2000
	MaxYear = 2100
)

const (
	dateLayout = "2006-01-02"
	day        = 24 * time.Hour
)

var loc = loadLocation()

func loadLocation() *time.Location {
	if l, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return l
	}
	return time.FixedZone("CST", 8*3600) // China has no DST.
}

// Location returns the zone in which calendar dates are interpreted:
// Asia/Shanghai, or a fixed UTC+8 zone if the tz database is unavailable.
func Location() *time.Location { return loc }

// Holiday is a public holiday period, both ends inclusive (YYYY-MM-DD).
type Holiday struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Year is one official year file, e.g. schemas/calendar/cn-2026.json.
type Year struct {
	Year           int       `json:"year"`
	Timezone       string    `json:"timezone"`
	Source         string    `json:"source"`
	Holidays       []Holiday `json:"holidays"`
	MakeupWorkdays []string  `json:"makeup_workdays"` // YYYY-MM-DD
}

// Parse decodes and validates a year file. Unknown fields are rejected.
func Parse(data []byte) (Year, error) {
	var y Year
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&y); err != nil {
		return Year{}, fmt.Errorf("workday: decode year file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Year{}, errors.New("workday: decode year file: trailing data after JSON object")
	}
	if _, err := y.workdays(); err != nil {
		return Year{}, err
	}
	return y, nil
}

// workdays validates y and returns, per day of the year (index YearDay-1),
// whether it is a working day.
func (y Year) workdays() ([]bool, error) {
	if y.Year < MinYear || y.Year > MaxYear {
		return nil, fmt.Errorf("workday: year %d outside supported range %d-%d", y.Year, MinYear, MaxYear)
	}
	if y.Timezone != "" && y.Timezone != "Asia/Shanghai" {
		return nil, fmt.Errorf("workday: %d: timezone %q, want \"Asia/Shanghai\"", y.Year, y.Timezone)
	}
	first := time.Date(y.Year, 1, 1, 0, 0, 0, 0, time.UTC)
	date := func(i int) time.Time { return first.AddDate(0, 0, i) }
	n := int(first.AddDate(1, 0, 0).Sub(first) / day)
	work, holiday := make([]bool, n), make([]bool, n)
	for i := range work {
		wd := date(i).Weekday()
		work[i] = wd != time.Saturday && wd != time.Sunday
	}
	index := func(what, s string) (int, error) {
		t, err := time.Parse(dateLayout, s)
		if err != nil {
			return 0, fmt.Errorf("workday: %d: %s %q is not a valid YYYY-MM-DD date", y.Year, what, s)
		}
		if t.Year() != y.Year {
			return 0, fmt.Errorf("workday: %d: %s %s is not in year %d", y.Year, what, s, y.Year)
		}
		return t.YearDay() - 1, nil
	}

	for _, h := range y.Holidays {
		if h.Name == "" {
			return nil, fmt.Errorf("workday: %d: holiday %s..%s has no name", y.Year, h.From, h.To)
		}
		from, err := index(fmt.Sprintf("holiday %q from", h.Name), h.From)
		if err != nil {
			return nil, err
		}
		to, err := index(fmt.Sprintf("holiday %q to", h.Name), h.To)
		if err != nil {
			return nil, err
		}
		if from > to {
			return nil, fmt.Errorf("workday: %d: holiday %q: from %s is after to %s", y.Year, h.Name, h.From, h.To)
		}
		for i := from; i <= to; i++ {
			if holiday[i] {
				return nil, fmt.Errorf("workday: %d: holiday %q: %s overlaps another holiday", y.Year, h.Name, date(i).Format(dateLayout))
			}
			holiday[i], work[i] = true, false
		}
	}

	for _, s := range y.MakeupWorkdays {
		i, err := index("make-up workday", s)
		if err != nil {
			return nil, err
		}
		switch wd := date(i).Weekday(); {
		case holiday[i]:
			return nil, fmt.Errorf("workday: %d: make-up workday %s is also a holiday", y.Year, s)
		case wd != time.Saturday && wd != time.Sunday:
			return nil, fmt.Errorf("workday: %d: make-up workday %s is a %s, not a weekend day", y.Year, s, wd)
		case work[i]:
			return nil, fmt.Errorf("workday: %d: make-up workday %s is listed twice", y.Year, s)
		}
		work[i] = true
	}
	return work, nil
}

// Calendar answers working-day questions for a set of loaded years. It is
// immutable after construction and safe for concurrent use.
type Calendar struct {
	days map[int][]bool // year -> working-day flag per YearDay-1
}

// New validates the years and builds a calendar; a year given twice is an
// error. The years need not be contiguous, but any computation that touches
// a date in a missing year fails with [ErrOutOfRange].
func New(years ...Year) (*Calendar, error) {
	c := &Calendar{days: make(map[int][]bool, len(years))}
	for _, y := range years {
		if _, dup := c.days[y.Year]; dup {
			return nil, fmt.Errorf("workday: year %d given twice", y.Year)
		}
		w, err := y.workdays()
		if err != nil {
			return nil, err
		}
		c.days[y.Year] = w
	}
	return c, nil
}

// With returns a new calendar with y added, or replacing the loaded year of
// the same number. c itself is unchanged.
func (c *Calendar) With(y Year) (*Calendar, error) {
	w, err := y.workdays()
	if err != nil {
		return nil, err
	}
	days := make(map[int][]bool, len(c.days)+1)
	maps.Copy(days, c.days)
	days[y.Year] = w
	return &Calendar{days: days}, nil
}

// Years returns the loaded years in ascending order.
func (c *Calendar) Years() []int { return slices.Sorted(maps.Keys(c.days)) }

// IsWorkday reports whether the Asia/Shanghai calendar date of t is a
// working day.
func (c *Calendar) IsWorkday(t time.Time) (bool, error) {
	t = t.In(loc)
	w, ok := c.days[t.Year()]
	if !ok {
		return false, fmt.Errorf("%w: %s (loaded: %v)", ErrOutOfRange, t.Format(dateLayout), c.Years())
	}
	return w[t.YearDay()-1], nil
}

// Due returns the deadline for "within n working days of t" (n >= 1), in
// Asia/Shanghai:
//   - if t falls on a working day, the same clock time n working days later;
//   - otherwise counting starts at 00:00 of the next working day and the
//     deadline is the end (24:00, i.e. 00:00 of the following calendar day)
//     of the n-th working day.
//
// Either way exactly n*24h of working time lies between t and the deadline.
func (c *Calendar) Due(t time.Time, n int) (time.Time, error) {
	if n < 1 {
		return time.Time{}, fmt.Errorf("workday: due within %d working days: n must be >= 1", n)
	}
	t = t.In(loc)
	d := startOfDay(t)
	onWorkday, err := c.IsWorkday(d)
	if err != nil {
		return time.Time{}, err
	}
	for left := n; left > 0; {
		d = d.AddDate(0, 0, 1)
		ok, err := c.IsWorkday(d)
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			left--
		}
	}
	if onWorkday {
		return d.Add(t.Sub(startOfDay(t))), nil
	}
	return d.AddDate(0, 0, 1), nil
}

// WorkingDuration returns how much of [from, to) falls on working days
// (each working day counting 24 hours); 0 if to is not after from.
func (c *Calendar) WorkingDuration(from, to time.Time) (time.Duration, error) {
	var total time.Duration
	if !to.After(from) {
		return 0, nil
	}
	for d := startOfDay(from); d.Before(to); d = d.AddDate(0, 0, 1) {
		ok, err := c.IsWorkday(d)
		if err != nil {
			return 0, err
		}
		if ok {
			start, end := d, d.AddDate(0, 0, 1)
			if from.After(start) {
				start = from
			}
			if to.Before(end) {
				end = to
			}
			total += end.Sub(start)
		}
	}
	return total, nil
}

// AddWorkingDuration returns the earliest instant s >= t with
// WorkingDuration(t, s) == d. A negative d goes backwards: it returns the
// latest instant s <= t with WorkingDuration(s, t) == -d (e.g. "warn 4
// working hours before due"). d == 0 returns t. The result is in
// Asia/Shanghai; a working day that is used up exactly ends the walk at its
// 24:00.
func (c *Calendar) AddWorkingDuration(t time.Time, d time.Duration) (time.Time, error) {
	t = t.In(loc)
	for d > 0 {
		start, end := startOfDay(t), startOfDay(t).AddDate(0, 0, 1)
		ok, err := c.IsWorkday(start)
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			if d <= end.Sub(t) {
				return t.Add(d), nil
			}
			d -= end.Sub(t)
		}
		t = end
	}
	for d < 0 {
		start := startOfDay(t.Add(-time.Nanosecond)) // day of the instant just before t
		ok, err := c.IsWorkday(start)
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			if d >= -t.Sub(start) {
				return t.Add(d), nil
			}
			d += t.Sub(start)
		}
		t = start
	}
	return t, nil
}

// startOfDay returns 00:00 Asia/Shanghai of the calendar day containing t.
func startOfDay(t time.Time) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}
