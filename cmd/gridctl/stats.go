package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// stats runs `gridctl stats show|rebuild|generate`.
func (c *client) stats(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: gridctl stats show|rebuild|generate")
	}
	c.http.Timeout = 30 * time.Minute // a rebuild or a generated year of a district takes a while
	switch args[0] {
	case "rebuild":
		var r struct {
			Items, Documents, Differences int
			Differed                      []string
		}
		start := time.Now()
		if err := c.do("POST", "/v1/admin/stats/rebuild", nil, &r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rebuilt from %d incidents in %v: %d counter documents, %d differed from the live counters\n",
			r.Items, time.Since(start).Round(time.Millisecond), r.Documents, r.Differences)
		if len(r.Differed) > 0 {
			fmt.Fprintf(stdout, "differed: %s\n", strings.Join(r.Differed, " "))
		}
		return nil
	case "show":
		return c.showStats(args[1:], stdout, stderr)
	case "generate":
		return c.generateStats(args[1:], stdout, stderr)
	}
	return errors.New("usage: gridctl stats show|rebuild|generate")
}

// showStats prints a unit's figures and its units below, or one table as CSV.
func (c *client) showStats(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	unit := fs.String("unit", "", "unit code (default: your home unit)")
	from := fs.String("from", "", "first day YYYY-MM-DD (default: the first day of the month a year ago)")
	to := fs.String("to", "", "last day YYYY-MM-DD (default: today)")
	table := fs.String("csv", "", "print one table as CSV: summary, units, categories, days, months, overdue")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := neturl.Values{}
	for k, v := range map[string]string{"unit": *unit, "from": *from, "to": *to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *table != "" {
		q.Set("format", "csv")
		q.Set("table", *table)
		data, err := c.raw("GET", "/v1/stats?"+q.Encode())
		if err == nil {
			_, err = stdout.Write(data)
		}
		return err
	}
	type figures struct {
		Key, Name                                                     string
		Reported, ResolvedOfReported, DueToClose, Closed, OpenOverdue int
		ClosureRate, OnTimeRate, SatisfactionRate, MeanHoursToClose   *float64
	}
	var r struct {
		figures
		Unit, From, To string
		UnitInfo       struct{ Name string }
		ByUnit         []figures
	}
	if err := c.do("GET", "/v1/stats?"+q.Encode(), nil, &r); err != nil {
		return err
	}
	pct := func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", *p*100)
	}
	hours := "—"
	if r.MeanHoursToClose != nil {
		hours = fmt.Sprintf("%.1f", *r.MeanHoursToClose)
	}
	fmt.Fprintf(stdout, "%s %s, %s to %s\nresolved of reported: %d of %d; closure rate %s (%d of %d due), on time %s, satisfaction %s, mean %s working hours to close, %d open overdue\n",
		r.Unit, r.UnitInfo.Name, r.From, r.To, r.ResolvedOfReported, r.Reported, pct(r.ClosureRate), r.Closed, r.DueToClose,
		pct(r.OnTimeRate), pct(r.SatisfactionRate), hours, r.OpenOverdue)
	if len(r.ByUnit) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tNAME\tREPORTED\tDUE\tCLOSED\tCLOSURE\tON TIME\tSATISFACTION\tOVERDUE")
	for _, u := range r.ByUnit {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n", u.Key, u.Name, u.Reported, u.DueToClose, u.Closed,
			pct(u.ClosureRate), pct(u.OnTimeRate), pct(u.SatisfactionRate), u.OpenOverdue)
	}
	return tw.Flush()
}

// generateStats makes a district of streets, communities and grids (through the
// admin API, like `unit create`) and has the server count made-up items into its
// figures (POST /v1/admin/stats/synthetic, allowed by GRID_STATS_SYNTHETIC): the
// benchmark of the dashboard at a size no test city has.
func (c *client) generateStats(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	district := fs.String("district", "", "district code (6 digits); made with its city when missing")
	items := fs.Int("items", 1_000_000, "made-up items to count")
	year := fs.Int("year", time.Now().Year()-1, "their year")
	streets := fs.Int("streets", 8, "streets in the district")
	communities := fs.Int("communities", 10, "communities per street")
	grids := fs.Int("grids", 8, "grids per community")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(*district) != 6 || *streets < 1 || *streets > 999 || *communities < 1 || *communities > 999 || *grids < 1 || *grids > 999 {
		return errors.New("stats generate: --district CODE (6 digits) and 1..999 streets, communities, grids")
	}
	start := time.Now()
	city := (*district)[:4] + "00"
	made := 0
	create := func(id, name string, boundary any) error {
		body := map[string]any{"id": id, "name": name}
		if boundary != nil {
			body["boundary"] = boundary
		}
		made++
		err := c.do("POST", "/v1/admin/units", body, nil)
		if err != nil && strings.Contains(err.Error(), "already_exists") {
			return nil // there under another name: kept
		}
		return err
	}
	if err := create(city, "城市 "+city, nil); err != nil {
		return err
	}
	if err := create(*district, "区 "+*district, nil); err != nil {
		return err
	}
	// Grids are laid out as squares of about 300 m, a community's in a row.
	const side = 0.003
	row := 0
	for s := 1; s <= *streets; s++ {
		st := fmt.Sprintf("%s%03d", *district, s)
		if err := create(st, fmt.Sprintf("第%d街道", s), nil); err != nil {
			return err
		}
		for m := 1; m <= *communities; m++ {
			cm := fmt.Sprintf("%s%03d", st, m)
			if err := create(cm, fmt.Sprintf("第%d街道第%d社区", s, m), nil); err != nil {
				return err
			}
			for g := 1; g <= *grids; g++ {
				lng, lat := 116.30+float64(g-1)*side, 39.90+float64(row)*side
				square := []map[string]float64{{"lng": lng, "lat": lat}, {"lng": lng + side, "lat": lat},
					{"lng": lng + side, "lat": lat + side}, {"lng": lng, "lat": lat + side}}
				if err := create(fmt.Sprintf("%s%03d", cm, g), fmt.Sprintf("%d-%d-%d网格", s, m, g), square); err != nil {
					return err
				}
			}
			row++
		}
	}
	fmt.Fprintf(stdout, "units: %d made or already there in %v\n", made, time.Since(start).Round(time.Millisecond))
	var r struct {
		Items, Documents int
		Seconds          float64
	}
	if err := c.do("POST", "/v1/admin/stats/synthetic", map[string]any{"unit": *district, "items": *items, "year": *year, "seed": *seed}, &r); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "counted %d made-up items of %d into %d counter documents in %.1f s\n", r.Items, *year, r.Documents, r.Seconds)
	return nil
}
