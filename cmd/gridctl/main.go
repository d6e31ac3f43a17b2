// Command gridctl is the admin command line of Gridkeeper. It talks to a running gridd
// over its HTTP API as an admin user, so every change it makes goes through the same
// command path and checks as any other.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/seal"
)

const usage = `gridctl — administer a Gridkeeper server

Usage:
  gridctl [flags] unit create CODE NAME      create a unit (its parent must exist)
  gridctl [flags] unit list                  list the units in your subtree
  gridctl [flags] user create LOGIN --name NAME --role ROLE[,ROLE] --unit CODE --password PW
  gridctl [flags] user move LOGIN --unit CODE  give a user another home unit (reassign a worker)
  gridctl [flags] whoami                     show the account gridctl acts as
  gridctl [flags] report refusals [--month YYYY-MM] [--unit CODE] [--csv]
                                             the monthly refusal report (default: last month)
  gridctl [flags] rules get                  print the incident categories and capability matrix in force
  gridctl [flags] rules put [--categories FILE] [--capabilities FILE]
                                             replace them (a file left out keeps the one in force)
  gridctl [flags] config get visits|points   print the visit plans or the love-point rates in force
  gridctl [flags] config put visits|points FILE
                                             replace them (the form of schemas/visits.json, points.json)
  gridctl [flags] calendar list              the working-day calendar years in force
  gridctl [flags] calendar load FILE         load a year (the format of schemas/calendar/*.json)
  gridctl [flags] import households FILE.csv [--skip-bad]
                                             import households, one row per resident (the columns of
                                             export households); all checked first, nothing imported if
                                             one is bad unless --skip-bad
  gridctl [flags] export households|visits|points [--unit CODE]
                                             CSV of the ledgers of a unit (personal numbers masked)
  gridctl [flags] keys new                   print a fresh data key (64 hex digits) for GRID_DATA_KEY
  gridctl [flags] keys reseal                after rotating GRID_DATA_KEY: move every stored ID-card and
                                             phone number to the new key (then drop the old one)
  gridctl [flags] stats show [--unit CODE] [--from DAY] [--to DAY] [--csv TABLE]
                                             the dashboard's figures of a unit and its units below
  gridctl [flags] stats rebuild              recompute every figure from the stored incidents; says how
                                             many counters differed from the live ones
  gridctl [flags] stats generate --district CODE [--items N --year Y --streets S --communities C --grids G]
                                             benchmarks: make a district and count made-up items into its
                                             figures (needs GRID_STATS_SYNTHETIC=true on the server)
  gridctl [flags] fleet [--devices N --duration D --reports N …]  simulate handsets, check they converge

Unit codes: district 6 digits (a city is the district's first 4 + "00"), street +3,
community +3, grid +3. Roles: grid_leader grid_manager grid_police grid_supervisor
info_collector building_leader dispatcher handler supervisor leader discipline admin.

Flags (or environment):
`

type client struct {
	base, token string
	http        *http.Client
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gridctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	url := fs.String("url", envOr(getenv, "GRID_URL", "http://127.0.0.1:8080"), "gridd base URL (GRID_URL)")
	login := fs.String("login", envOr(getenv, "GRID_LOGIN", "admin"), "admin login (GRID_LOGIN)")
	password := fs.String("password", getenv("GRID_PASSWORD"), "admin password (GRID_PASSWORD; default the demo password)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *password == "" {
		*password = envOr(getenv, "GRID_DEMO_PASSWORD", "gridkeeper")
	}
	rest := fs.Args()
	if len(rest) < 1 {
		fs.Usage()
		return 2
	}
	if strings.Join(rest, " ") == "keys new" { // needs no server
		fmt.Fprintln(stdout, seal.NewKey())
		return 0
	}
	c := &client{base: strings.TrimRight(*url, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	if err := c.login(*login, *password); err != nil {
		fmt.Fprintln(stderr, "gridctl:", err)
		return 1
	}
	var err error
	switch strings.Join(rest[:min(2, len(rest))], " ") {
	case "unit create":
		if len(rest) != 4 {
			err = errors.New("usage: gridctl unit create CODE NAME")
			break
		}
		err = c.do("POST", "/v1/admin/units", map[string]string{"id": rest[2], "name": rest[3]}, nil)
		if err == nil {
			fmt.Fprintf(stdout, "created unit %s %s\n", rest[2], rest[3])
		}
	case "unit list":
		var r struct {
			Units []struct {
				ID, Name, Parent string
				Level            int
			}
		}
		if err = c.do("GET", "/v1/units", nil, &r); err == nil {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CODE\tLEVEL\tNAME\tPARENT")
			for _, u := range r.Units {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", u.ID, u.Level, u.Name, u.Parent)
			}
			tw.Flush()
		}
	case "user create":
		err = c.createUser(rest[2:], stdout, stderr)
	case "user move":
		err = c.moveUser(rest[2:], stdout, stderr)
	case "rules get":
		var r map[string]json.RawMessage
		if err = c.do("GET", "/v1/admin/rules", nil, &r); err == nil {
			b, _ := json.MarshalIndent(r, "", "  ")
			fmt.Fprintln(stdout, string(b))
		}
	case "rules put":
		err = c.putRules(rest[2:], stdout, stderr)
	case "config get":
		if len(rest) != 3 {
			err = errors.New("usage: gridctl config get visits|points")
			break
		}
		var data []byte
		if data, err = c.raw("GET", "/v1/admin/config/"+neturl.PathEscape(rest[2])); err == nil {
			_, err = stdout.Write(append(data, '\n'))
		}
	case "config put":
		if len(rest) != 4 {
			err = errors.New("usage: gridctl config put visits|points FILE")
			break
		}
		var data []byte
		if data, err = os.ReadFile(rest[3]); err == nil {
			if !json.Valid(data) {
				err = fmt.Errorf("%s is not JSON", rest[3])
				break
			}
			if err = c.do("PUT", "/v1/admin/config/"+neturl.PathEscape(rest[2]), json.RawMessage(data), nil); err == nil {
				fmt.Fprintf(stdout, "%s in force\n", rest[2])
			}
		}
	case "calendar list":
		var r struct{ Years, Loaded []int }
		if err = c.do("GET", "/v1/admin/calendar", nil, &r); err == nil {
			fmt.Fprintf(stdout, "years in force: %v\nloaded by an admin: %v\n", r.Years, r.Loaded)
		}
	case "import households":
		err = c.importHouseholds(rest[2:], stdout, stderr)
	case "keys reseal":
		var r struct {
			Checked, Stale, Resealed int
			Key                      string
		}
		if err = c.do("POST", "/v1/admin/personal-data/reseal", nil, &r); err == nil {
			fmt.Fprintf(stdout, "households checked: %d; under an earlier key: %d; resealed with key %s: %d\n", r.Checked, r.Stale, r.Key, r.Resealed)
			if r.Resealed < r.Stale {
				err = fmt.Errorf("%d households not resealed; run it again", r.Stale-r.Resealed)
			}
		}
	case "calendar load":
		err = c.loadYear(rest[2:], stdout)
	case "report refusals":
		err = c.refusalReport(rest[2:], stdout, stderr)
	case "whoami":
		var me map[string]any
		if err = c.do("GET", "/v1/me", nil, &me); err == nil {
			b, _ := json.MarshalIndent(me, "", "  ")
			fmt.Fprintln(stdout, string(b))
		}
	default:
		if rest[0] == "export" {
			err = c.export(rest[1:], stdout, stderr)
			break
		}
		if rest[0] == "stats" {
			err = c.stats(rest[1:], stdout, stderr)
			break
		}
		if rest[0] == "fleet" {
			err = fleet(c, rest[1:], func() error { return c.login(*login, *password) }, stdout, stderr)
			break
		}
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "gridctl:", err)
		return 1
	}
	return 0
}

// refusalReport prints the monthly refusal report as a table, or as CSV.
func (c *client) refusalReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report refusals", flag.ContinueOnError)
	fs.SetOutput(stderr)
	month := fs.String("month", "", "YYYY-MM (default: last month)")
	unit := fs.String("unit", "", "unit code (default: your home unit)")
	asCSV := fs.Bool("csv", false, "print CSV, one row per refusal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := neturl.Values{}
	if *month != "" {
		q.Set("month", *month)
	}
	if *unit != "" {
		q.Set("unit", *unit)
	}
	if *asCSV {
		q.Set("format", "csv")
		data, err := c.raw("GET", "/v1/reports/refusals?"+q.Encode())
		if err == nil {
			_, err = stdout.Write(data)
		}
		return err
	}
	var r struct {
		Month, Unit, DueBy string
		Complete           bool
		Total, Late        int
		ByUnit             []struct {
			Unit        string
			Count, Late int
		}
	}
	if err := c.do("GET", "/v1/reports/refusals?"+q.Encode(), nil, &r); err != nil {
		return err
	}
	state := "complete"
	if !r.Complete {
		state = "month not over"
	}
	fmt.Fprintf(stdout, "refusals %s in %s (%s; due by %s): %d, %d filed late\n", r.Month, r.Unit, state, r.DueBy, r.Total, r.Late)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tREFUSALS\tLATE")
	for _, u := range r.ByUnit {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", u.Unit, u.Count, u.Late)
	}
	return tw.Flush()
}

// putRules replaces the rules, reading each document from its file or keeping the
// one in force.
func (c *client) putRules(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules put", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cats := fs.String("categories", "", "categories file (the form of schemas/categories.json)")
	caps := fs.String("capabilities", "", "capability matrix file (the form of schemas/capabilities.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cats == "" && *caps == "" {
		return errors.New("usage: gridctl rules put [--categories FILE] [--capabilities FILE]")
	}
	var r map[string]json.RawMessage
	if err := c.do("GET", "/v1/admin/rules", nil, &r); err != nil {
		return err
	}
	for key, file := range map[string]string{"categories": *cats, "capabilities": *caps} {
		if file == "" {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if !json.Valid(data) {
			return fmt.Errorf("%s is not JSON", file)
		}
		r[key] = data
	}
	var out struct{ Version, Categories int }
	if err := c.do("PUT", "/v1/admin/rules", r, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rules version %d in force: %d categories\n", out.Version, out.Categories)
	return nil
}

// loadYear loads a calendar year file.
func (c *client) loadYear(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: gridctl calendar load FILE")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var y struct{ Year int }
	if err := json.Unmarshal(data, &y); err != nil || y.Year == 0 {
		return fmt.Errorf("%s: not a calendar year file (no \"year\")", args[0])
	}
	var out struct{ Year, Holidays, MakeupWorkdays int }
	if err := c.do("PUT", fmt.Sprintf("/v1/admin/calendar/%d", y.Year), json.RawMessage(data), &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "calendar %d loaded: %d holidays, %d make-up workdays\n", out.Year, out.Holidays, out.MakeupWorkdays)
	return nil
}

func (c *client) createUser(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: gridctl user create LOGIN --name NAME --role ROLE[,ROLE] --unit CODE --password PW")
	}
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "display name")
	roles := fs.String("role", "", "roles, comma separated")
	unit := fs.String("unit", "", "home unit code")
	pw := fs.String("password", "", "initial password (8 to 72 bytes)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	body := map[string]any{"login": args[0], "name": *name, "roles": splitList(*roles), "unitId": *unit, "password": *pw}
	if err := c.do("POST", "/v1/admin/users", body, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s in %s\n", args[0], *unit)
	return nil
}

func (c *client) moveUser(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: gridctl user move LOGIN --unit CODE")
	}
	fs := flag.NewFlagSet("user move", flag.ContinueOnError)
	fs.SetOutput(stderr)
	unit := fs.String("unit", "", "the new home unit code")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := c.do("POST", "/v1/admin/users/"+args[0]+"/move", map[string]string{"unitId": *unit}, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "moved user %s to %s\n", args[0], *unit)
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *client) login(login, password string) error {
	host, _ := os.Hostname()
	dev := "gridctl-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, host)
	if len(dev) > 64 {
		dev = dev[:64]
	}
	var t struct{ AccessToken string }
	if err := c.do("POST", "/v1/auth/login", map[string]string{"login": login, "password": password, "deviceId": dev, "platform": "cli"}, &t); err != nil {
		return fmt.Errorf("login as %s: %w", login, err)
	}
	c.token = t.AccessToken
	return nil
}

// do calls the API; a non-2xx answer becomes an error carrying the server's message.
func (c *client) do(method, path string, body, out any) error {
	data, err := c.send(method, path, body)
	if err != nil {
		return err
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// raw returns an answer's body as it came (CSV downloads).
func (c *client) raw(method, path string) ([]byte, error) { return c.send(method, path, nil) }

// send makes one API call as the logged-in user; a status other than 2xx is an error
// carrying the API's code and message.
func (c *client) send(method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach gridd at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		var e struct {
			Code, Message string
			Fields        map[string]string
		}
		_ = json.Unmarshal(data, &e)
		msg := fmt.Sprintf("%s: %s", e.Code, e.Message)
		for f, p := range e.Fields {
			msg += fmt.Sprintf("; %s: %s", f, p)
		}
		return nil, fmt.Errorf("%d %s", resp.StatusCode, msg)
	}
	return data, nil
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}
