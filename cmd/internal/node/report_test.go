package node_test

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/incident"
)

// The monthly refusal report: every refusal of the month in the caller's subtree, by
// refusing unit, late filings counted; JSON and CSV; for the discipline officer and
// leaders, not dispatchers; bad queries refused.
func TestRefusalReport(t *testing.T) {
	clock := nodetest.NewClock()
	clock.Advance(shanghai("2026-10-12 10:00").Sub(clock.Now())) // a Monday
	h, p := startLifecycle(t, clock)
	wb := h.Login("workerb", "wb")
	db := h.Login("dispatcherb", "desk-b2")
	onTime := report(t, p.worker, "place.sanitation")
	late := report(t, p.worker, "place.sanitation")
	open := report(t, p.worker, "place.sanitation")
	other := report(t, wb, "place.sanitation")
	mustMove(t, p.dispatcher, "refuse", map[string]any{"incidentId": onTime, "reason": "不属本社区受理范围", "requesterNotice": "电话告知"})
	mustMove(t, db, "refuse", map[string]any{"incidentId": other, "reason": "重复反映"})
	clock.Advance(30 * time.Hour) // Tuesday 16:00: past the 1-working-day window
	d := h.Login("dispatcher", "desk-a3")
	mustMove(t, d, "refuse", map[string]any{"incidentId": late, "reason": "已由物业处理"})
	disc := h.Login("discipline", "dsc2")
	var r incident.RefusalReport
	if st := disc.Do("GET", "/v1/reports/refusals?month=2026-10", nil, &r); st != 200 {
		t.Fatalf("report: %d %s", st, disc.LastBody)
	}
	if r.Month != "2026-10" || r.Unit != nodetest.District || r.DueBy != "2026-11-10" || r.Total != 3 || r.Late != 1 || len(r.ByUnit) != 2 {
		t.Fatalf("report: %+v", r)
	}
	a := r.ByUnit[0]
	if a.Unit != nodetest.CommunityA || a.Count != 2 || a.Late != 1 || a.Items[0].IncidentID != onTime || a.Items[1].IncidentID != late ||
		!a.Items[1].Late || a.Items[0].RequesterNotice != "电话告知" || a.Items[0].By != "dispatcher" {
		t.Errorf("community A: %+v", a)
	}
	for _, u := range r.ByUnit {
		for _, it := range u.Items {
			if it.IncidentID == open {
				t.Errorf("an item never refused is in the report")
			}
		}
	}
	// Narrowed to community B.
	if st := disc.Do("GET", "/v1/reports/refusals?month=2026-10&unit="+nodetest.CommunityB, nil, &r); st != 200 || r.Total != 1 || r.ByUnit[0].Items[0].IncidentID != other {
		t.Errorf("community B: %d %+v", st, r)
	}
	// Another month is empty.
	if st := disc.Do("GET", "/v1/reports/refusals?month=2026-09", nil, &r); st != 200 || r.Total != 0 || !r.Complete {
		t.Errorf("September: %d %+v", st, r)
	}
	// CSV: a header and one row per refusal.
	st, body := disc.Raw("GET", "/v1/reports/refusals?month=2026-10&format=csv", nil, nil)
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if st != 200 || err != nil || len(rows) != 4 || rows[0][0] != "month" || rows[2][2] != late || rows[2][8] != "true" || rows[2][7] != "2026-10-13 16:00" {
		t.Errorf("csv: %d %v %q", st, err, rows)
	}
	// Who may read it, and bad queries.
	if st, _ := d.Raw("GET", "/v1/reports/refusals?month=2026-10", nil, nil); st != 403 {
		t.Errorf("a dispatcher reads the report: %d", st)
	}
	st2 := h.Login("street", "st2")
	if st := st2.Do("GET", "/v1/reports/refusals?month=2026-10", nil, &r); st != 200 || r.Total != 3 {
		t.Errorf("the street leader: %d %d", st, r.Total)
	}
	if st, _ := st2.Raw("GET", "/v1/reports/refusals?month=2026-10&unit=110106", nil, nil); st != 403 {
		t.Errorf("a district outside the street: %d", st)
	}
	for _, q := range []string{"month=2026-13", "month=last", "format=xml", "unit=$ne", "month=1999-01"} {
		if st, _ := disc.Raw("GET", "/v1/reports/refusals?"+q, nil, nil); st != 400 {
			t.Errorf("%s: %d, want 400", q, st)
		}
	}
}

// The report is filed on the 1st by a broker schedule, even across a gridd restart:
// from then on the month's report is the filed record (filed, with its filing time),
// and the discipline officers are told (report.refusalsFiled).
func TestRefusalReportFiledOnTheFirst(t *testing.T) {
	clock := nodetest.NewClock() // the real time: gridd schedules this month's filing on the 1st ahead
	h, p := startLifecycle(t, clock)
	id := report(t, p.worker, "place.sanitation")
	mustMove(t, p.dispatcher, "refuse", map[string]any{"incidentId": id, "reason": "不属本社区受理范围"})
	loc := workday.Location()
	y, m, _ := clock.Now().In(loc).Date()
	month := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	first := month.AddDate(0, 1, 0)
	clock.Advance(first.Sub(clock.Now()) + 5*time.Minute)
	// The broker's schedule runs on real time: set this month's filing two seconds
	// ahead instead of on the 1st, and restart gridd before it fires.
	if err := incident.ScheduleRefusalReport(t.Context(), h.Node.JS, h.Node.Names, month.Format("2006-01"), time.Now().Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	h.Restart(nil)
	disc := h.Login("discipline", "dsc-f")
	var r incident.RefusalReport
	deadline := time.Now().Add(20 * time.Second)
	for !r.Filed && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if st := disc.Do("GET", "/v1/reports/refusals?month="+month.Format("2006-01"), nil, &r); st != 200 {
			t.Fatalf("report: %d %s", st, disc.LastBody)
		}
	}
	if !r.Filed || !r.GeneratedAt.Equal(first.Add(5*time.Minute)) || r.Total != 1 || r.DueBy != first.Format("2006-01")+"-10" ||
		r.ByUnit[0].Items[0].IncidentID != id || r.ByUnit[0].Items[0].Reason != "不属本社区受理范围" {
		t.Fatalf("filed report: %+v", r)
	}
	// Cut to a unit from the filed record.
	if st := disc.Do("GET", "/v1/reports/refusals?month="+month.Format("2006-01")+"&unit="+nodetest.CommunityB, nil, &r); st != 200 || !r.Filed || r.Total != 0 {
		t.Errorf("community B from the filed record: %d %+v", st, r)
	}
	if evs := events(t, h, "report.refusalsFiled"); len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"dueBy":"`+first.Format("2006-01")+`-10"`) {
		t.Errorf("filing events: %d", len(evs))
	}
	// The city-wide event reaches the discipline officer's inbox.
	waitFor(t, "the discipline officer told of the filed report", func() bool {
		for _, n := range inbox(t, disc) {
			if n.Kind == "refusalReport" {
				return true
			}
		}
		return false
	})
}
