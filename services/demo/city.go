package demo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/directory"
	"github.com/gridkeeper/gridkeeper/services/household"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/gridkeeper/gridkeeper/services/volunteer"
)

type cityData struct {
	units         []directory.CreateUnitArgs
	users         []directory.CreateUserArgs
	households    []household.Household
	organisations []household.Organisation
	teams         []volunteer.Team
	activities    []volunteer.Activity
	incidents     []incident.Incident
}

var (
	surnames = []rune("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎")
	given    = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红文斌宇浩凯鹏慧晨欣怡")
	streets  = []string{"大同路", "南关街", "和平巷", "新华里", "民主路"}
	// Incident descriptions by category, as a grid worker would write them.
	descriptions = map[string][]string{
		"people.dispute":         {"楼上住户漏水引发邻里纠纷，双方情绪激动", "停车位占用引起邻里争执"},
		"people.vulnerable":      {"独居老人反映行动不便，需要上门代购药品", "残疾人家庭申请临时救助"},
		"people.floating":        {"新入住租户未办理流动人口登记"},
		"place.sanitation":       {"小区门口垃圾堆放未及时清运", "楼道内堆放杂物影响通行"},
		"place.road":             {"人行道地砖破损，雨天积水", "路面塌陷形成坑洼"},
		"place.courtyard":        {"无物业庭院私搭乱建，需协调治理", "庭院绿化带被占用种菜"},
		"thing.streetlight":      {"巷口路灯不亮，夜间行人不便"},
		"thing.manhole":          {"井盖缺失存在安全隐患", "雨水井盖松动异响"},
		"thing.fire_safety":      {"楼道内电动车充电存在火灾隐患", "消防通道被车辆堵塞"},
		"thing.facility":         {"健身器材损坏需维修", "公共座椅断裂"},
		"event.noise":            {"夜间装修噪音扰民", "广场舞音量过大影响居民休息"},
		"event.safety":           {"单元门禁损坏，外来人员随意进出"},
		"place.illegal_building": {"楼顶违规加盖彩钢房"},
	}
	categoryOrder = []string{"place.sanitation", "people.dispute", "thing.manhole", "place.courtyard", "event.noise",
		"people.vulnerable", "thing.facility", "thing.streetlight", "thing.fire_safety", "place.road",
		"people.floating", "event.safety", "place.illegal_building"}
)

// Demo year: the twelve months before this date. Fixed so that every start seeds the
// same records with the same ids.
var demoEnd = time.Date(2026, 11, 20, 18, 0, 0, 0, workday.Location())

func name(r *rand.Rand) string {
	n := string(surnames[r.IntN(len(surnames))]) + string(given[r.IntN(len(given))])
	if r.IntN(2) == 0 {
		n += string(given[r.IntN(len(given))])
	}
	return n
}

// boundary is grid g's outline: a band of the community from west to east (where its
// incidents are placed), its borders with the neighbouring grids bending along a lane.
func boundary(g int) []directory.Vertex {
	border := func(k int) []directory.Vertex {
		lat := 38.0428 + float64(k)*0.002
		bend := 0.0003 * float64(1-2*(k%2))
		if k == 1 || k == Grids+1 {
			bend = 0 // the community's own edge is straight
		}
		return []directory.Vertex{{Lng: 114.5149, Lat: lat}, {Lng: 114.5162, Lat: lat + bend}, {Lng: 114.5176, Lat: lat - bend/2}, {Lng: 114.5189, Lat: lat}}
	}
	out := border(g)
	top := border(g + 1)
	slices.Reverse(top)
	return append(out, top...)
}

// build makes the whole demo city deterministically.
func build(cal *workday.Calendar) cityData {
	r := rand.New(rand.NewPCG(20261127, 844))
	var c cityData
	c.units = []directory.CreateUnitArgs{
		{ID: City, Name: "示范市"}, {ID: District, Name: "城关区"}, {ID: Street, Name: "南关街道"},
		{ID: Community, Name: "大同社区"},
	}
	for g := 1; g <= Grids; g++ {
		c.units = append(c.units, directory.CreateUnitArgs{ID: Grid(g), Name: fmt.Sprintf("大同社区第%d网格", g), Boundary: boundary(g)})
	}
	for _, l := range Logins {
		c.users = append(c.users, directory.CreateUserArgs{Login: l.Login, Name: name(r), Roles: []string{l.Role}, UnitID: l.Unit})
	}
	// Street, district and city staff also lead their units.
	for i := range c.users {
		switch c.users[i].Login {
		case "street", "district", "city":
			c.users[i].Roles = append(c.users[i].Roles, org.RoleLeader, org.RoleDispatcher)
		}
	}
	// 一长四员 of the source text: 5 grid leaders, (5 managers are worker1-5), 2 police,
	// 24 supervisors, 28 information collectors, and 26 building leaders.
	staff := []struct {
		prefix, role string
		n            int
	}{
		{"leader", org.RoleGridLeader, 5}, {"police", org.RoleGridPolice, 2}, {"supervisor", org.RoleGridSupervisor, 24},
		{"collector", org.RoleInfoCollector, 28}, {"building", org.RoleBuildingLeader, 26},
	}
	for _, s := range staff {
		for i := 1; i <= s.n; i++ {
			c.users = append(c.users, directory.CreateUserArgs{Login: fmt.Sprintf("%s%02d", s.prefix, i), Name: name(r),
				Roles: []string{s.role}, UnitID: Grid((i-1)%Grids + 1)})
		}
	}
	c.households = households(r)
	c.organisations = organisations(r)
	c.teams, c.activities = volunteerService(r)
	c.incidents = incidents(r, cal)
	return c
}

// incidents makes a year of 476 reports, 469 of them resolved and closed, the last 7
// still open.
func incidents(r *rand.Rand, cal *workday.Calendar) []incident.Incident {
	start := demoEnd.AddDate(-1, 0, 0)
	span := demoEnd.Sub(start)
	out := make([]incident.Incident, 0, Incidents)
	for k := 0; k < Incidents; k++ {
		// Spread evenly with jitter, in working hours.
		at := start.Add(time.Duration(float64(span) * (float64(k) + r.Float64()*0.8) / Incidents))
		at = time.Date(at.Year(), at.Month(), at.Day(), 8+r.IntN(9), r.IntN(60), r.IntN(60), 0, workday.Location())
		g := r.IntN(Grids) + 1
		cat := categoryOrder[min(len(categoryOrder)-1, int(r.ExpFloat64()*3))]
		texts := descriptions[cat]
		worker := fmt.Sprintf("worker%d", g)
		inc := incident.Incident{
			ID: idAt(at, r), Status: incident.Reported, Level: 2, UnitID: Community, GridID: Grid(g),
			Category: cat, Description: texts[r.IntN(len(texts))],
			Location: incident.Point{Lat: 38.0428 + float64(g)*0.002 + r.Float64()*0.002, Lng: 114.5149 + r.Float64()*0.004},
			Address:  fmt.Sprintf("%s%d号", streets[g-1], 1+r.IntN(80)),
			Photos:   []string{}, Source: "patrol", ReporterID: worker, CreatedAt: at.UTC(), UpdatedAt: at.UTC(), Version: 1,
			Special: cat == "place.road" || cat == "thing.facility" || cat == "place.illegal_building",
		}
		if r.IntN(3) == 0 {
			inc.Source = "resident"
			inc.Requester = &incident.Requester{Name: name(r), Phone: fmt.Sprintf("1%d%09d", 3+r.IntN(7), r.IntN(1_000_000_000))}
		}
		inc.History = []incident.HistoryEntry{{At: at.UTC(), By: worker, Action: "report", To: incident.Reported, Unit: Community}}
		open := k >= Resolved
		step := func(after time.Duration, by, action string, to incident.Status, reason string) time.Time {
			at = at.Add(after)
			inc.History = append(inc.History, incident.HistoryEntry{At: at.UTC(), By: by, Action: action, From: inc.Status, To: to, Reason: reason, Unit: Community})
			inc.Status = to
			inc.UpdatedAt = at.UTC()
			inc.Version++
			return at
		}
		if open && k < Resolved+4 {
			out = append(out, inc)
			continue
		}
		accepted := step(time.Duration(10+r.IntN(90))*time.Minute, "dispatcher", "accept", incident.Accepted, "")
		inc.FirstOwnerID = "dispatcher"
		n := 1
		if inc.Special {
			n = 3
		}
		if due, err := cal.Due(accepted, n); err == nil {
			due = due.UTC()
			inc.DueAt = &due
		}
		if open {
			out = append(out, inc)
			continue
		}
		inc.AssigneeID = worker
		step(time.Duration(5+r.IntN(30))*time.Minute, "dispatcher", "assign", incident.Assigned, "")
		step(time.Duration(10+r.IntN(60))*time.Minute, worker, "start", incident.InProgress, "")
		// About one in twelve finishes late.
		work := time.Duration(1+r.IntN(6)) * time.Hour
		if r.IntN(12) == 0 {
			work = time.Duration(30+r.IntN(60)) * time.Hour
		}
		step(work, worker, "resolve", incident.Resolved, "已处置")
		closed := step(time.Duration(1+r.IntN(4))*time.Hour, "dispatcher", "verify", incident.Closed, "核查通过")
		c := closed.UTC()
		inc.ClosedAt = &c
		inc.Overdue = inc.DueAt != nil && closed.After(*inc.DueAt)
		// Two in three are rated by the reporter within two days (服务评价), mostly
		// satisfied; drawn from their own source so the rest of the year stays as it was.
		rr := rand.New(rand.NewPCG(uint64(k), 5))
		if rr.IntN(3) > 0 {
			value := "satisfied"
			if rr.IntN(6) == 0 {
				value = "basically_satisfied"
			}
			rated := at.Add(time.Duration(1+rr.IntN(47)) * time.Hour).UTC()
			inc.Rating = &incident.Rating{Value: value, By: worker, At: rated}
			inc.History = append(inc.History, incident.HistoryEntry{At: rated, By: worker, Action: "rate", From: incident.Closed, To: incident.Closed,
				Reason: value, Unit: Community})
			inc.UpdatedAt = rated
			inc.Version++
		}
		out = append(out, inc)
	}
	return out
}

// idAt makes a deterministic UUIDv7 for time t.
func idAt(t time.Time, r *rand.Rand) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		b[i] = byte(ms >> (40 - 8*i))
	}
	for i := 6; i < 16; i++ {
		b[i] = byte(r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return uuid.UUID(b).String()
}
