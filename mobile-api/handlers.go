package mobileapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/device"
	"github.com/gridkeeper/gridkeeper/services/directory"
	"github.com/gridkeeper/gridkeeper/services/fieldsync"
	"github.com/gridkeeper/gridkeeper/services/household"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"github.com/gridkeeper/gridkeeper/services/notify"
	"github.com/gridkeeper/gridkeeper/services/volunteer"
)

func (s *server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		// The probe is public: say what is down in the log, not in the answer.
		s.Logger.Warn("not ready", "err", err)
		return c.Status(503).JSON(fiber.Map{"code": "not_ready", "message": "a dependency (database, NATS or an applier) is not up"})
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(s.openapiJSON)
}

func (s *server) login(c *fiber.Ctx) error {
	var r auth.LoginRequest
	if err := s.decode(c, &r); err != nil {
		return err
	}
	t, err := s.Auth.Login(c.UserContext(), r, c.IP())
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *server) refresh(c *fiber.Ctx) error {
	var r auth.RefreshRequest
	if err := s.decode(c, &r); err != nil {
		return err
	}
	t, err := s.Auth.Refresh(c.UserContext(), r)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *server) logout(c *fiber.Ctx) error {
	sid, _ := c.Locals(localSession).(string)
	if err := s.Auth.Logout(c.UserContext(), sid); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) me(c *fiber.Ctx) error {
	a := actorOf(c)
	return c.JSON(auth.UserInfo{ID: a.UserID, Name: a.Name, Roles: a.Roles, UnitID: a.UnitID})
}

func (s *server) push(c *fiber.Ctx) error {
	var r fieldsync.PushRequest
	if err := s.decode(c, &r); err != nil {
		return err
	}
	resp, err := s.Sync.Push(c.UserContext(), actorOf(c), &r)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

func (s *server) pull(c *fiber.Ctx) error {
	var r fieldsync.PullRequest
	if err := s.decode(c, &r); err != nil {
		return err
	}
	resp, err := s.Sync.Pull(c.UserContext(), actorOf(c), &r)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

func (s *server) categories(c *fiber.Ctx) error {
	cat := s.Incidents.Catalog()
	return c.JSON(fiber.Map{"version": cat.Version, "categories": cat.All()})
}

func (s *server) getIncident(c *fiber.Ctx) error {
	inc, err := s.Incidents.Get(c.UserContext(), actorOf(c), strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	return c.JSON(inc)
}

// listIncidents is the dispatcher's list: GET /v1/incidents?status=&category=&level=
// &overdue=&unit=&sort=&limit=&cursor=.
func (s *server) listIncidents(c *fiber.Ctx) error {
	q := incident.ListQuery{Unit: strings.Clone(c.Query("unit")), Category: strings.Clone(c.Query("category")),
		Sort: strings.Clone(c.Query("sort")), Cursor: strings.Clone(c.Query("cursor"))}
	f := fault.Fields{}
	if v := c.Query("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			q.Statuses = append(q.Statuses, incident.Status(strings.Clone(st)))
		}
	}
	for name, dst := range map[string]*int{"level": &q.Level, "limit": &q.Limit} {
		if v := c.Query(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				f.Add(name, "a whole number")
			}
			*dst = n
		}
	}
	switch v := c.Query("overdue"); v {
	case "":
	case "true", "false":
		b := v == "true"
		q.Overdue = &b
	default:
		f.Add("overdue", "true or false")
	}
	if err := f.Err("invalid_request", "invalid list query"); err != nil {
		return err
	}
	page, err := s.Incidents.List(c.UserContext(), actorOf(c), q)
	if err != nil {
		return err
	}
	return c.JSON(page)
}

// refusalReport is the monthly refusal report: GET /v1/reports/refusals?month=YYYY-MM
// &unit=CODE&format=json|csv.
func (s *server) refusalReport(c *fiber.Ctx) error {
	format := c.Query("format", "json")
	if format != "json" && format != "csv" {
		return fault.New(fault.Invalid, "invalid_request", "format: json or csv")
	}
	r, err := s.Incidents.RefusalReport(c.UserContext(), actorOf(c), strings.Clone(c.Query("month")), strings.Clone(c.Query("unit")), time.Now())
	if err != nil {
		return err
	}
	if format == "csv" {
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="refusals-`+r.Unit+"-"+r.Month+`.csv"`)
		return c.Send(r.CSV())
	}
	return c.JSON(r)
}

// complaints lists the complaints of the caller's subtree (discipline officers only).
func (s *server) complaints(c *fiber.Ctx) error {
	cs, err := s.Complaints.List(c.UserContext(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"complaints": cs})
}

func (s *server) units(c *fiber.Ctx) error {
	us, err := s.Directory.Units(c.UserContext(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"units": us})
}

func (s *server) createUnit(c *fiber.Ctx) error {
	var a directory.CreateUnitArgs
	if err := s.decode(c, &a); err != nil {
		return err
	}
	if err := s.Admin.CreateUnit(c.UserContext(), actorOf(c), a); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": a.ID, "name": a.Name})
}

type createUserRequest struct {
	Login    string   `json:"login"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	UnitID   string   `json:"unitId"`
	Password string   `json:"password"`
}

func (s *server) createUser(c *fiber.Ctx) error {
	var r createUserRequest
	if err := s.decode(c, &r); err != nil {
		return err
	}
	a := directory.CreateUserArgs{Login: r.Login, Name: r.Name, Roles: r.Roles, UnitID: r.UnitID}
	if err := s.Admin.CreateUser(c.UserContext(), actorOf(c), a, r.Password); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(auth.UserInfo{ID: strings.ToLower(a.Login), Name: a.Name, Roles: a.Roles, UnitID: a.UnitID})
}

type moveUserRequest struct {
	UnitID string `json:"unitId"`
}

func (s *server) moveUser(c *fiber.Ctx) error {
	var r moveUserRequest
	if err := s.decode(c, &r); err != nil {
		return err
	}
	a := directory.MoveUserArgs{Login: strings.Clone(c.Params("login")), UnitID: r.UnitID}
	if err := s.Admin.MoveUser(c.UserContext(), actorOf(c), a); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"login": strings.ToLower(a.Login), "unitId": a.UnitID})
}

func (s *server) conflicts(c *fiber.Ctx) error {
	cs, err := s.Households.Conflicts(c.UserContext(), actorOf(c), 500)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"conflicts": cs})
}

func (s *server) putDevice(c *fiber.Ctx) error {
	var r device.Registration
	if err := s.decode(c, &r); err != nil {
		return err
	}
	d, err := s.Devices.Register(c.UserContext(), actorOf(c), strings.Clone(c.Params("deviceId")), r)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

// getRules returns the categories and capability matrix in force, in the form PUT
// takes back.
func (s *server) getRules(c *fiber.Ctx) error { return c.JSON(s.Config.Rules()) }

// putRules replaces the categories and capability matrix without a release.
func (s *server) putRules(c *fiber.Ctx) error {
	var r incident.Rules
	if err := s.decode(c, &r); err != nil {
		return err
	}
	cat, err := s.Config.PutRules(c.UserContext(), r)
	if err != nil {
		return err
	}
	s.Logger.Info("rules replaced", "by", actorOf(c).UserID, "categoriesVersion", cat.Version)
	return c.JSON(fiber.Map{"version": cat.Version, "categories": len(cat.Codes())})
}

// getCalendar lists the calendar years in force and those an admin loaded.
func (s *server) getCalendar(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"years": s.Incidents.Calendar().Years(), "loaded": s.Config.StoredYears()})
}

// putCalendarYear loads (or corrects) a calendar year from its official file.
func (s *server) putCalendarYear(c *fiber.Ctx) error {
	year, err := strconv.Atoi(c.Params("year"))
	if err != nil || len(c.Params("year")) != 4 {
		return fault.New(fault.Invalid, "invalid_year", "the year is four digits")
	}
	body, err := s.body(c, s.opt.MaxBody)
	if err != nil {
		return err
	}
	y, err := s.Config.PutYear(c.UserContext(), year, body)
	if err != nil {
		return err
	}
	s.Logger.Info("calendar year loaded", "by", actorOf(c).UserID, "year", y.Year, "source", y.Source)
	return c.JSON(fiber.Map{"year": y.Year, "holidays": len(y.Holidays), "makeupWorkdays": len(y.MakeupWorkdays)})
}

// notifications is the caller's inbox, newest first: GET /v1/notifications?before=&limit=.
func (s *server) notifications(c *fiber.Ctx) error {
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return fault.New(fault.Invalid, "invalid_request", "limit: 1 to 200")
		}
		limit = n
	}
	ns, err := s.Inbox.List(c.UserContext(), actorOf(c), strings.Clone(c.Query("before")), strings.Clone(c.Query("beforeId")), limit)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"notifications": ns})
}

func (s *server) getPreferences(c *fiber.Ctx) error {
	p, err := s.Prefs.Get(c.UserContext(), actorOf(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *server) putPreferences(c *fiber.Ctx) error {
	var p notify.Preferences
	if err := s.decodeStrict(c, &p); err != nil {
		return err
	}
	if err := s.Prefs.Put(c.UserContext(), actorOf(c).UserID, p); err != nil {
		return err
	}
	return c.JSON(p)
}

// personal returns one household with its residents' ID-card and phone numbers in
// clear, for the roles that need them, with a reason; the read is logged.
func (s *server) personal(c *fiber.Ctx) error {
	h, err := s.Households.Personal(c.UserContext(), actorOf(c), strings.Clone(c.Params("id")), strings.Clone(c.Query("reason")))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(h)
}

// accessLog lists the reads of personal data in clear: GET /v1/access-log?unit=&from=
// &to=&limit= (RFC 3339 times; default the last 30 days).
func (s *server) accessLog(c *fiber.Ctx) error {
	to, from := time.Now().UTC(), time.Now().UTC().AddDate(0, 0, -30)
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fault.New(fault.Invalid, "invalid_request", name+": an RFC 3339 time")
			}
			*dst = t
		}
	}
	limit := 500
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5000 {
			return fault.New(fault.Invalid, "invalid_request", "limit: 1 to 5000")
		}
		limit = n
	}
	es, err := s.Households.AccessLog(c.UserContext(), actorOf(c), strings.Clone(c.Query("unit")), from, to, limit)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"accesses": es})
}

// reseal moves personal data sealed with an earlier key to the current one (after a
// key rotation).
func (s *server) reseal(c *fiber.Ctx) error {
	r, err := s.Households.Reseal(c.UserContext(), actorOf(c))
	if err != nil {
		return err
	}
	s.Logger.Info("personal data resealed", "by", actorOf(c).UserID, "checked", r.Checked, "stale", r.Stale, "resealed", r.Resealed)
	return c.JSON(r)
}

// dueVisits lists the households due a visit: GET /v1/visits/due?unit=&overdue=true.
func (s *server) dueVisits(c *fiber.Ctx) error {
	overdue := false
	switch c.Query("overdue") {
	case "", "false":
	case "true":
		overdue = true
	default:
		return fault.New(fault.Invalid, "invalid_request", "overdue: true or false")
	}
	ds, err := s.Households.DueVisits(c.UserContext(), actorOf(c), strings.Clone(c.Query("unit")), s.now(), overdue)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"visits": ds})
}

func (s *server) registerVolunteer(c *fiber.Ctx) error {
	var a volunteer.RegisterArgs
	if err := s.decode(c, &a); err != nil {
		return err
	}
	if err := s.Points.Submit(c.UserContext(), actorOf(c), volunteer.CmdRegister, "", a); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(a)
}

// createTeam makes a volunteer team (the community's staff).
func (s *server) createTeam(c *fiber.Ctx) error {
	var a volunteer.TeamArgs
	if err := s.decode(c, &a); err != nil {
		return err
	}
	if err := s.Points.Submit(c.UserContext(), actorOf(c), volunteer.CmdTeam, "", a); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(a)
}

// volunteers lists a community's volunteers with their balances:
// GET /v1/volunteers?community=&sort=name|leaderboard.
func (s *server) volunteers(c *fiber.Ctx) error {
	sort := c.Query("sort", "name")
	if sort != "name" && sort != "leaderboard" {
		return fault.New(fault.Invalid, "invalid_request", "sort: name or leaderboard")
	}
	vs, err := s.Points.Volunteers(c.UserContext(), actorOf(c), strings.Clone(c.Query("community")), sort == "leaderboard")
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"volunteers": vs})
}

func (s *server) ledger(c *fiber.Ctx) error {
	es, err := s.Points.Ledger(c.UserContext(), actorOf(c), strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"entries": es})
}

func (s *server) supermarket(c *fiber.Ctx) error {
	is, err := s.Points.Items(c.UserContext(), actorOf(c), strings.Clone(c.Query("community")))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": is})
}

// stock sets a love-supermarket article and its stock: PUT /v1/supermarket/{itemId}.
func (s *server) stock(c *fiber.Ctx) error {
	var a volunteer.StockArgs
	if err := s.decode(c, &a); err != nil {
		return err
	}
	a.ItemID = strings.Clone(c.Params("itemId"))
	if err := s.Points.Submit(c.UserContext(), actorOf(c), volunteer.CmdStock, "", a); err != nil {
		return err
	}
	return c.JSON(a)
}

// redeem spends a volunteer's points at the love supermarket; redemptionId, made by
// the caller, makes a retry the same redemption.
func (s *server) redeem(c *fiber.Ctx) error {
	var a volunteer.RedeemArgs
	if err := s.decode(c, &a); err != nil {
		return err
	}
	if err := s.Points.Submit(c.UserContext(), actorOf(c), volunteer.CmdRedeem, a.RedemptionID, a); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(a)
}

// importHouseholds checks and stores a batch of households read from a CSV by
// gridctl: POST /v1/admin/households/import?dryRun=&skipBad=.
func (s *server) importHouseholds(c *fiber.Ctx) error {
	var body struct {
		Rows []household.ImportRow `json:"rows"`
	}
	// A batch of 2,000 households with their residents is larger than a handset's body.
	if err := s.decodeUpTo(c, &body, 16*s.opt.MaxBody); err != nil {
		return err
	}
	r, err := s.Households.Import(c.UserContext(), actorOf(c), body.Rows, c.QueryBool("dryRun"), c.QueryBool("skipBad"))
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func sendCSV(c *fiber.Ctx, name string, data []byte) error {
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	return c.Send(data)
}

func (s *server) exportHouseholds(c *fiber.Ctx) error {
	data, err := s.Households.ExportHouseholds(c.UserContext(), actorOf(c), strings.Clone(c.Query("unit")))
	if err != nil {
		return err
	}
	return sendCSV(c, "households.csv", data)
}

func (s *server) exportVisits(c *fiber.Ctx) error {
	to, from := s.now().UTC(), time.Time{}
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fault.New(fault.Invalid, "invalid_request", name+": an RFC 3339 time")
			}
			*dst = t
		}
	}
	data, err := s.Households.ExportVisits(c.UserContext(), actorOf(c), strings.Clone(c.Query("unit")), from, to)
	if err != nil {
		return err
	}
	return sendCSV(c, "visits.csv", data)
}

func (s *server) exportPoints(c *fiber.Ctx) error {
	data, err := s.Points.ExportLedger(c.UserContext(), actorOf(c), strings.Clone(c.Query("community")))
	if err != nil {
		return err
	}
	return sendCSV(c, "points.csv", data)
}

// getConfigDoc returns a document admins change at run time (visits: the visit plans;
// points: the love-point rates).
func (s *server) getConfigDoc(c *fiber.Ctx) error {
	d := s.Config.Doc(c.Params("doc"))
	if d == nil {
		return fault.New(fault.NotFound, "not_found", "no such configuration document")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(d)
}

// putConfigDoc replaces one, in force on every gridd at once.
func (s *server) putConfigDoc(c *fiber.Ctx) error {
	body, err := s.body(c, s.opt.MaxBody)
	if err != nil {
		return err
	}
	doc := strings.Clone(c.Params("doc"))
	if err := s.Config.PutDoc(c.UserContext(), doc, body); err != nil {
		return err
	}
	s.Logger.Info("configuration replaced", "by", actorOf(c).UserID, "doc", doc)
	return c.Send(s.Config.Doc(doc))
}
