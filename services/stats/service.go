package stats

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Unit is a unit as the dashboard names it.
type Unit struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Level  int    `json:"level"`
	Parent string `json:"parent,omitempty"`
}

// Service answers the dashboard's questions.
type Service struct {
	DB *mongo.Database
	// Units lists every unit (cached here for UnitsTTL).
	Units func(ctx context.Context) ([]Unit, error)
	// CategoryName names a category in a language ("zh" or "en").
	CategoryName func(code, lang string) string
	// Categories lists the codes items are filed under (for synthetic figures).
	Categories func() []string
	// Projector is the projector when it runs in this process (nil elsewhere).
	Projector *Projector
	Now       func() time.Time

	mu      sync.Mutex
	units   map[string]Unit
	kids    map[string][]string
	expires time.Time
}

// UnitsTTL is how long the unit tree is cached.
const UnitsTTL = 10 * time.Second

// Request asks for a unit's figures over a period.
type Request struct {
	Unit string // default: the caller's home unit
	From string // YYYY-MM-DD; default: the first day of the month a year ago
	To   string // YYYY-MM-DD; default: today
	Lang string // names in "zh" (default) or "en"
}

// Report is the figures with names.
type Report struct {
	*Result
	UnitInfo Unit   `json:"unitInfo"`
	Path     []Unit `json:"path"` // from the caller's home unit down to the unit
	AsOf     string `json:"asOf"`
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// DefaultPeriod is the first day of the month a year ago to today (Asia/Shanghai).
func DefaultPeriod(now time.Time) (string, string) {
	t := now.In(workday.Location())
	from := time.Date(t.Year()-1, t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return from.Format(time.DateOnly), t.Format(time.DateOnly)
}

func (s *Service) tree(ctx context.Context) (map[string]Unit, map[string][]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.units != nil && time.Now().Before(s.expires) {
		return s.units, s.kids, nil
	}
	us, err := s.Units(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.units, s.kids = map[string]Unit{}, map[string][]string{}
	for _, u := range us {
		s.units[u.ID] = u
		if u.Parent != "" {
			s.kids[u.Parent] = append(s.kids[u.Parent], u.ID)
		}
	}
	for _, k := range s.kids {
		slices.Sort(k)
	}
	s.expires = time.Now().Add(UnitsTTL) // real time: a test clock must not freeze the cache
	return s.units, s.kids, nil
}

// Report answers a request of the actor: only units of the actor's subtree.
func (s *Service) Report(ctx context.Context, a org.Actor, q Request) (*Report, error) {
	unit, err := a.Area(q.Unit)
	if err != nil {
		return nil, err
	}
	f := fault.Fields{}
	df, dt := DefaultPeriod(s.now())
	if q.From == "" {
		q.From = df
	}
	if q.To == "" {
		q.To = dt
	}
	from, err1 := time.Parse(time.DateOnly, q.From)
	to, err2 := time.Parse(time.DateOnly, q.To)
	if err1 != nil {
		f.Add("from", "a date YYYY-MM-DD")
	}
	if err2 != nil {
		f.Add("to", "a date YYYY-MM-DD")
	}
	if err1 == nil && err2 == nil && (to.Before(from) || to.Sub(from) >= MaxDays*24*time.Hour) {
		f.Add("to", "on or after from, at most three years later")
	}
	if q.Lang == "" {
		q.Lang = "zh"
	}
	if q.Lang != "zh" && q.Lang != "en" {
		f.Add("lang", "zh or en")
	}
	if err := f.Err("invalid_request", "invalid statistics query"); err != nil {
		return nil, err
	}
	units, kids, err := s.tree(ctx)
	if err != nil {
		return nil, err
	}
	info, ok := units[unit]
	if !ok {
		return nil, fault.New(fault.NotFound, "not_found", "no such unit")
	}
	res, err := Query(ctx, s.DB, unit, kids[unit], q.From, q.To)
	if err != nil {
		return nil, fault.Wrap(err, "read figures")
	}
	for i := range res.ByUnit {
		res.ByUnit[i].Name = units[res.ByUnit[i].Key].Name
	}
	if s.CategoryName != nil {
		for i := range res.ByCategory {
			res.ByCategory[i].Name = s.CategoryName(res.ByCategory[i].Key, q.Lang)
		}
	}
	r := &Report{Result: res, UnitInfo: info, AsOf: s.now().UTC().Format(time.RFC3339)}
	for _, u := range slices.Backward(Units(unit)) {
		if a.Sees(u) {
			if x, ok := units[u]; ok {
				r.Path = append(r.Path, x)
			}
		}
	}
	return r, nil
}

// Tables are the CSV tables of a report.
var Tables = []string{"summary", "units", "categories", "days", "months", "overdue"}

// CSV returns one table of a report as rows (the first the header).
func (r *Report) CSV(table string) ([][]string, error) {
	head := []string{"reported", "accepted", "dueToClose", "closed", "closedOnTime", "closureRate", "onTimeRate",
		"rated", "satisfied", "basicallySatisfied", "unsatisfied", "satisfactionRate", "escalated", "escalationRate",
		"refused", "refusalRate", "reopened", "reopenRate", "meanWorkingHoursToClose", "openOverdue", "resolvedOfReported",
		"resolvedOfReportedRate"}
	line := func(f Figures) []string {
		c := f.Counts
		return []string{itoa(c.Reported), itoa(c.Accepted), itoa(c.DueToClose), itoa(c.Closed), itoa(c.ClosedOnTime),
			pct(f.ClosureRate), pct(f.OnTimeRate), itoa(c.Rated), itoa(c.Satisfied), itoa(c.BasicallySatisfied),
			itoa(c.Unsatisfied), pct(f.SatisfactionRate), itoa(c.Escalated), pct(f.EscalationRate), itoa(c.Refused),
			pct(f.RefusalRate), itoa(c.Reopened), pct(f.ReopenRate), num(f.MeanHoursToClose), itoa(c.OpenOverdue),
			itoa(c.ResolvedOfReported), pct(f.ResolvedOfReportedRate)}
	}
	rows := func(first string, rs []Row) [][]string {
		out := [][]string{append([]string{first, "name"}, head...)}
		for _, x := range rs {
			out = append(out, append([]string{x.Key, x.Name}, line(x.Figures)...))
		}
		return out
	}
	switch table {
	case "summary":
		return [][]string{append([]string{"unit", "name", "from", "to"}, head...),
			append([]string{r.Unit, r.UnitInfo.Name, r.From, r.To}, line(r.Figures)...)}, nil
	case "units":
		return rows("unit", r.ByUnit), nil
	case "categories":
		return rows("category", r.ByCategory), nil
	case "days":
		if r.ByDay == nil {
			return nil, fault.New(fault.Invalid, "invalid_request", fmt.Sprintf("table: by day only for periods of up to %d days", MaxDaily))
		}
		return rows("day", r.ByDay), nil
	case "months":
		return rows("month", r.ByMonth), nil
	case "overdue":
		out := [][]string{{"id", "category", "gridId", "unitId", "level", "status", "urgent", "dueAt", "summary"}}
		for _, e := range r.Overdue {
			due := ""
			if e.DueAt != nil {
				due = e.DueAt.In(workday.Location()).Format("2006-01-02 15:04")
			}
			out = append(out, []string{e.ID, e.Category, e.Grid, e.Owner, itoa(e.Level), e.Status, fmt.Sprint(e.Urgent), due, e.Summary})
		}
		return out, nil
	}
	return nil, fault.New(fault.Invalid, "invalid_request", "table: one of "+strings.Join(Tables, ", "))
}

func itoa(n int) string { return fmt.Sprint(n) }

func pct(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%.4f", *p)
}

func num(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%.1f", *p)
}

// Synthetic counts made-up items into the figures of the grids below a unit of the
// actor's subtree (benchmarks; see Projector.Synthesize).
func (s *Service) Synthetic(ctx context.Context, a org.Actor, unit string, items, year int, seed uint64) (*SyntheticReport, error) {
	if s.Projector == nil {
		return nil, fault.New(fault.Unavailable, "unavailable", "the statistics projector does not run on this instance")
	}
	unit, err := a.Area(unit)
	if err != nil {
		return nil, err
	}
	units, _, err := s.tree(ctx)
	if err != nil {
		return nil, err
	}
	var grids []string
	for id, u := range units {
		if u.Level == 1 && org.Contains(unit, id) {
			grids = append(grids, id)
		}
	}
	slices.Sort(grids)
	var cats []string
	if s.Categories != nil {
		cats = s.Categories()
	}
	return s.Projector.Synthesize(ctx, Synthetic{Grids: grids, Categories: cats, Items: items, Year: year, Seed: seed})
}
