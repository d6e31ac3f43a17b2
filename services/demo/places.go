package demo

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/household"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/gridkeeper/gridkeeper/services/volunteer"
)

// Figures of 大同社区 in the source text.
const (
	Households    = 844
	Residents     = 3086
	Floating      = 156
	Organisations = 13
	Buildings     = 26
	Teams         = 6
	Activities    = 42
	Served        = 1862
)

var relations = []string{"spouse", "child", "child", "parent", "grandchild", "sibling"}

// households makes 844 households in 26 buildings with 3,086 residents, 156 of them
// floating, and the tags a grid worker's ledger carries.
func households(r *rand.Rand) []household.Household {
	sizes := make([]int, Households)
	left := Residents - Households
	for i := range sizes {
		sizes[i] = 1
	}
	for left > 0 {
		i := r.IntN(Households)
		if sizes[i] < 7 {
			sizes[i]++
			left--
		}
	}
	at := demoEnd.AddDate(-1, 0, 0).UTC()
	out := make([]household.Household, Households)
	perBuilding := make([]int, Buildings)
	for i := range out {
		b := i % Buildings
		perBuilding[b]++
		n := perBuilding[b] - 1
		unit, floor, door := n%3+1, n/6+1, n/3%2+1
		grid := b%Grids + 1
		h := household.Household{
			ID: fmt.Sprintf("hh-%s-%03d-%d-%d%02d", Grid(grid)[12:], b+1, unit, floor, door), GridID: Grid(grid),
			Building: fmt.Sprintf("%d号楼", b+1), Unit: fmt.Sprintf("%d单元", unit), Room: fmt.Sprintf("%d%02d", floor, door),
			CreatedAt: at, UpdatedAt: at,
		}
		h.Address = fmt.Sprintf("%s%d号 %s%s%s室", streets[grid-1], b+1, h.Building, h.Unit, h.Room)
		for m := 0; m < sizes[i]; m++ {
			rel := "head"
			if m > 0 {
				rel = relations[r.IntN(len(relations))]
			}
			m := household.Member{Name: name(r), Relation: rel, IDCard: idCard(r)}
			if m.Relation == "head" || r.IntN(3) == 0 {
				m.Phone = fmt.Sprintf("1%d%09d", 3+r.IntN(7), r.IntN(1000000000))
			}
			h.Members = append(h.Members, m)
		}
		switch {
		case sizes[i] == 1 && r.IntN(3) == 0:
			h.Tags = append(h.Tags, "elderly_alone")
		case r.IntN(40) == 0:
			h.Tags = append(h.Tags, "low_income")
		}
		if r.IntN(35) == 0 {
			h.Members[r.IntN(len(h.Members))].Tags = []string{"disabled"}
			h.Tags = append(h.Tags, "disabled")
		}
		if r.IntN(12) == 0 {
			h.Members[0].Tags = append(h.Members[0].Tags, "party_member")
		}
		out[i] = h
	}
	// 156 floating residents: tenants spread over the households.
	for marked := 0; marked < Floating; {
		h := &out[r.IntN(Households)]
		m := &h.Members[r.IntN(len(h.Members))]
		if !m.Floating {
			m.Floating, m.Relation = true, "tenant"
			marked++
		}
	}
	return out
}

// idCard makes a synthetic ID-card number of 长安区 (130102) with a right check
// character, born between 1935 and 2020.
func idCard(r *rand.Rand) string {
	born := time.Date(1935+r.IntN(86), time.January, 1+r.IntN(365), 0, 0, 0, 0, time.UTC)
	first := fmt.Sprintf("130102%s%03d", born.Format("20060102"), r.IntN(1000))
	return first + string(org.IDCardCheck(first))
}

// Supermarket is the love supermarket's opening catalogue.
var Supermarket = []volunteer.StockArgs{
	{ItemID: "item-rice", Name: "大米 5kg", Points: 50, Stock: 40},
	{ItemID: "item-oil", Name: "食用油 1.8L", Points: 40, Stock: 30},
	{ItemID: "item-towel", Name: "毛巾", Points: 10, Stock: 100},
	{ItemID: "item-soap", Name: "洗衣皂", Points: 5, Stock: 200},
	{ItemID: "item-haircut", Name: "理发服务一次", Points: 20, Stock: 50},
}

var orgKinds = []struct{ name, kind string }{
	{"大同小学", "school"}, {"南关社区卫生服务站", "clinic"}, {"大同农贸市场", "enterprise"}, {"和平超市", "shop"},
	{"新华书店南关店", "shop"}, {"南关派出所大同警务室", "government"}, {"大同幼儿园", "school"}, {"民主路邮政所", "enterprise"},
	{"城关供电所", "enterprise"}, {"和平药房", "shop"}, {"大同物业服务中心", "enterprise"}, {"南关街道文化站", "government"},
	{"新华里银行网点", "enterprise"},
}

func organisations(r *rand.Rand) []household.Organisation {
	out := make([]household.Organisation, Organisations)
	for i, o := range orgKinds {
		g := i%Grids + 1
		out[i] = household.Organisation{ID: fmt.Sprintf("org-%02d", i+1), GridID: Grid(g), Name: o.name, Kind: o.kind,
			Address: fmt.Sprintf("%s%d号", streets[g-1], 1+r.IntN(80))}
	}
	return out
}

var teamNames = []struct {
	name     string
	services []string
}{
	{"便民利民服务队", []string{"水电费代缴", "代购代办"}},
	{"文体娱乐服务队", []string{"广场舞", "书画"}},
	{"义务诊疗服务队", []string{"义务诊疗", "健康咨询"}},
	{"家电维修服务队", []string{"家电维修"}},
	{"政策宣传服务队", []string{"政策宣传", "法律咨询"}},
	{"助老助残服务队", []string{"送药上门", "陪护"}},
}

// volunteerService makes the 6 teams and their 42 activities of the year, which served
// 1,862 residents.
func volunteerService(r *rand.Rand) ([]volunteer.Team, []volunteer.Activity) {
	teams := make([]volunteer.Team, Teams)
	for i, t := range teamNames {
		teams[i] = volunteer.Team{ID: fmt.Sprintf("team-%d", i+1), CommunityID: Community, Name: t.name, Services: t.services}
		for k := 0; k < 5+r.IntN(8); k++ {
			teams[i].Members = append(teams[i].Members, name(r))
		}
	}
	acts := make([]volunteer.Activity, Activities)
	left := Served
	start := demoEnd.AddDate(-1, 0, 0)
	for i := range acts {
		t := teams[i%Teams]
		served := left / (Activities - i)
		if i < Activities-1 {
			served += r.IntN(21) - 10
		}
		left -= served
		at := start.Add(time.Duration(i) * 365 * 24 * time.Hour / Activities).Truncate(24 * time.Hour).Add(9 * time.Hour)
		acts[i] = volunteer.Activity{ID: fmt.Sprintf("act-%02d", i+1), TeamID: t.ID, CommunityID: Community,
			Title: t.Services[r.IntN(len(t.Services))], At: at.In(workday.Location()).UTC(), Hours: float64(2 + r.IntN(3)),
			Volunteers: 3 + r.IntN(len(t.Members)), Served: served}
	}
	return teams, acts
}
