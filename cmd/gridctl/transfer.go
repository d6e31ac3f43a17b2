package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// householdColumns are the columns of a household CSV (one row per resident; the
// household's columns repeat on each of its rows), as `gridctl export households`
// writes them.
var householdColumns = []string{"householdId", "gridId", "building", "unit", "room", "address", "householdTags",
	"residentId", "name", "relation", "gender", "birthDate", "idCard", "phone", "floating", "residentTags"}

type importMember struct {
	ResidentID string   `json:"residentId,omitempty"`
	Name       string   `json:"name"`
	Relation   string   `json:"relation,omitempty"`
	Floating   bool     `json:"floating"`
	Tags       []string `json:"tags,omitempty"`
	Gender     string   `json:"gender,omitempty"`
	BirthDate  string   `json:"birthDate,omitempty"`
	IDCard     string   `json:"idCard,omitempty"`
	Phone      string   `json:"phone,omitempty"`
}

type importHousehold struct {
	ID       string         `json:"id"`
	GridID   string         `json:"gridId"`
	Building string         `json:"building"`
	Unit     string         `json:"unit"`
	Room     string         `json:"room"`
	Address  string         `json:"address"`
	Tags     []string       `json:"tags,omitempty"`
	Members  []importMember `json:"members"`
}

type importRow struct {
	Household importHousehold `json:"household"`
	Lines     []int           `json:"lines"`
}

type importResult struct {
	Checked, Imported, Existing int
	Errors                      []struct {
		Lines       []int
		HouseholdID string
		Problem     string
	}
}

func tags(s string) []string {
	var out []string
	for _, t := range strings.Split(s, "|") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// readHouseholds reads a household CSV into households, each with its line numbers;
// a line that cannot be read is reported with its number.
func readHouseholds(r io.Reader) ([]importRow, []string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("line 1: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimPrefix(strings.TrimSpace(header[i]), "\ufeff")
	}
	if !slices.Equal(header, householdColumns) {
		return nil, nil, fmt.Errorf("line 1: the header must be %s", strings.Join(householdColumns, ","))
	}
	var rows []importRow
	var problems []string
	at := map[string]int{}
	bad := map[string]bool{} // households with a line that could not be read
	for {
		rec, err := cr.Read()
		line, _ := cr.FieldPos(0)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		if len(rec) != len(householdColumns) {
			problems = append(problems, fmt.Sprintf("line %d: %d columns, want %d", line, len(rec), len(householdColumns)))
			continue
		}
		f := func(name string) string { return strings.TrimSpace(rec[slices.Index(householdColumns, name)]) }
		id := f("householdId")
		i, ok := at[id]
		if !ok {
			i = len(rows)
			at[id] = i
			rows = append(rows, importRow{Household: importHousehold{ID: id, GridID: f("gridId"), Building: f("building"), Unit: f("unit"),
				Room: f("room"), Address: f("address"), Tags: tags(f("householdTags")), Members: []importMember{}}})
		}
		rows[i].Lines = append(rows[i].Lines, line)
		if f("name") == "" && f("residentId") == "" {
			continue // a household without residents
		}
		floating := false
		switch strings.ToLower(f("floating")) {
		case "", "false", "0", "否":
		case "true", "1", "是":
			floating = true
		default:
			problems = append(problems, fmt.Sprintf("line %d: household %s: floating: true or false", line, id))
			bad[id] = true
		}
		rows[i].Household.Members = append(rows[i].Household.Members, importMember{ResidentID: f("residentId"), Name: f("name"),
			Relation: f("relation"), Floating: floating, Tags: tags(f("residentTags")), Gender: f("gender"), BirthDate: f("birthDate"),
			IDCard: f("idCard"), Phone: f("phone")})
	}
	rows = slices.DeleteFunc(rows, func(r importRow) bool { return bad[r.Household.ID] })
	return rows, problems, nil
}

// importHouseholds imports a household CSV: every household is checked first, and
// nothing is stored if one is bad, unless --skip-bad; progress goes to stderr.
func (c *client) importHouseholds(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import households", flag.ContinueOnError)
	fs.SetOutput(stderr)
	skipBad := fs.Bool("skip-bad", false, "import the good households and report the bad ones")
	batch := fs.Int("batch", 500, "households per request")
	if err := fs.Parse(flagsFirst(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 || *batch < 1 || *batch > 2000 {
		return errors.New("usage: gridctl import households FILE.csv [--skip-bad] [--batch N]")
	}
	file, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer file.Close()
	rows, problems, err := readHouseholds(file)
	if err != nil {
		return err
	}
	residents := 0
	for _, r := range rows {
		residents += len(r.Household.Members)
	}
	fmt.Fprintf(stderr, "%s: %d households, %d residents\n", fs.Arg(0), len(rows), residents)
	// A batch is stored through the write path before it is answered: give it time.
	c.http.Timeout = 5 * time.Minute
	run := func(what string, q neturl.Values) (importResult, error) {
		var total importResult
		start := time.Now()
		for i := 0; i < len(rows); i += *batch {
			part := rows[i:min(len(rows), i+*batch)]
			var r importResult
			t0 := time.Now()
			if err := c.do("POST", "/v1/admin/households/import?"+q.Encode(), map[string]any{"rows": part}, &r); err != nil {
				return total, err
			}
			total.Checked += r.Checked
			total.Imported += r.Imported
			total.Existing += r.Existing
			total.Errors = append(total.Errors, r.Errors...)
			if d := time.Since(t0); d > 10*time.Second {
				fmt.Fprintf(stderr, "\n%s: a batch of %d took %v\n", what, len(part), d.Round(time.Millisecond))
			}
			progress(stderr, what, i+len(part), len(rows), start)
		}
		fmt.Fprintln(stderr)
		return total, nil
	}
	check, err := run("checking", neturl.Values{"dryRun": {"true"}})
	if err != nil {
		return err
	}
	for _, e := range check.Errors {
		problems = append(problems, fmt.Sprintf("line %s: household %s: %s", lines(e.Lines), e.HouseholdID, e.Problem))
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 && !*skipBad {
		return fmt.Errorf("%d problems: nothing imported (--skip-bad imports the good households)", len(problems))
	}
	res, err := run("importing", neturl.Values{"skipBad": {"true"}})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d households (%d already there, %d skipped as bad)\n", res.Imported, res.Existing, len(res.Errors))
	return nil
}

// flagsFirst moves flags before the arguments, so "FILE --skip-bad" parses too.
func flagsFirst(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			flags = append(flags, args[i])
			if args[i] == "--batch" || args[i] == "-batch" {
				if i+1 < len(args) {
					flags = append(flags, args[i+1])
					i++
				}
			}
			continue
		}
		rest = append(rest, args[i])
	}
	return append(flags, rest...)
}

func lines(ls []int) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = fmt.Sprint(l)
	}
	return strings.Join(s, ",")
}

// progress draws a progress bar on one line.
func progress(w io.Writer, what string, done, total int, start time.Time) {
	const width = 30
	n := width * done / max(total, 1)
	rate := float64(done) / max(time.Since(start).Seconds(), 1e-3)
	fmt.Fprintf(w, "\r%-9s [%s%s] %d/%d  %.0f/s", what, strings.Repeat("#", n), strings.Repeat(".", width-n), done, total, rate)
}

// export prints a CSV export of households, visits or points.
func (c *client) export(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	unit := fs.String("unit", "", "unit code (default: your home unit; points: a community)")
	if len(args) < 1 {
		return errors.New("usage: gridctl export households|visits|points [--unit CODE] > FILE.csv")
	}
	what := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	q := neturl.Values{}
	switch what {
	case "households", "visits":
		if *unit != "" {
			q.Set("unit", *unit)
		}
	case "points":
		if *unit != "" {
			q.Set("community", *unit)
		}
	default:
		return errors.New("usage: gridctl export households|visits|points [--unit CODE] > FILE.csv")
	}
	data, err := c.raw("GET", "/v1/export/"+what+".csv?"+q.Encode())
	if err == nil {
		_, err = stdout.Write(data)
	}
	return err
}
