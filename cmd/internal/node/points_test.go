package node_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/volunteer"
)

// Love points: volunteers registered by the community's dispatcher earn points for
// activities recorded on a grid worker's phone (by the rate of the activity's kind)
// and spend them at the love supermarket. 20 concurrent redemptions against a balance
// that covers 5 — exactly 5 succeed; 10 against a stock of 3 — exactly 3; the ledger
// adds up to every balance; a retried redemption is not spent twice.
func TestLovePoints(t *testing.T) {
	h, p := startLifecycle(t, nil)
	w, d := p.worker, p.dispatcher
	comm := nodetest.CommunityA
	reg := func(c *nodetest.Client, id, name, community string) (int, string) {
		st, body := c.Raw("POST", "/v1/volunteers", map[string]any{"volunteerId": id, "communityId": community, "name": name}, nil)
		return st, string(body)
	}
	for _, v := range []struct{ id, name string }{{"v-1", "张志愿"}, {"v-2", "李志愿"}, {"v-3", "王志愿"}} {
		if st, body := reg(d, v.id, v.name, comm); st != 201 {
			t.Fatalf("register %s: %d %s", v.id, st, body)
		}
	}
	for _, c := range []struct {
		by       *nodetest.Client
		id, comm string
		st       int
	}{
		{w, "v-9", comm, 403},            // grid workers do not register volunteers
		{d, "v-1", comm, 409},            // taken
		{d, "v-8", nodetest.Street, 400}, // not a community
		{p.other, "v-7", comm, 403},      // another community's dispatcher
		{d, "$ne", comm, 400},
	} {
		if st, body := reg(c.by, c.id, "某", c.comm); st != c.st {
			t.Errorf("register %s by %s: %d %s, want %d", c.id, c.by.Device, st, body, c.st)
		}
	}
	// A team made by the dispatcher (not by a grid worker); activities name it.
	if st, body := d.Raw("POST", "/v1/teams", map[string]any{"teamId": "team-x", "communityId": comm, "name": "助老服务队", "services": []string{"陪护"}}, nil); st != 201 {
		t.Fatalf("team: %d %s", st, body)
	}
	if st, _ := w.Raw("POST", "/v1/teams", map[string]any{"teamId": "team-y", "communityId": comm, "name": "某队"}, nil); st != 403 {
		t.Errorf("a grid worker makes a team: %d", st)
	}
	if st, _ := d.Raw("POST", "/v1/teams", map[string]any{"teamId": "team-x", "communityId": comm, "name": "重复"}, nil); st != 409 {
		t.Errorf("a taken team id: %d", st)
	}
	start := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	activity := func(kind string, ps ...any) map[string]any {
		var parts []any
		for i := 0; i < len(ps); i += 2 {
			parts = append(parts, map[string]any{"volunteerId": ps[i], "hours": ps[i+1]})
		}
		return map[string]any{"activityId": newID(t), "teamId": "team-x", "title": "关爱独居老人", "kind": kind, "startedAt": start,
			"endedAt": start.Add(2 * time.Hour), "participants": parts, "served": 12}
	}
	// elderly_care earns 15 an hour, cleanup 10, other kinds 10.
	for _, a := range []map[string]any{activity("elderly_care", "v-1", 2.0, "v-2", 1.0), activity("cleanup", "v-3", 2.0), activity("other", "v-3", 2.0),
		activity("cleanup", "v-3", 1.0)} {
		if st, code := pushOne(t, w, "volunteer.recordActivity", a); st != "applied" {
			t.Fatalf("record: %s %s", st, code)
		}
	}
	for _, bad := range []map[string]any{
		activity("cleanup", "v-1", 2.5), // longer than the activity
		activity("cleanup", "v-404", 1.0),
		activity("cleanup", "v-1", 0.0),
		activity("cleanup", "v-1", 1.0, "v-1", 1.0),
		func() map[string]any {
			a := activity("cleanup", "v-1", 1.0)
			a["endedAt"] = start.Add(-time.Hour)
			return a
		}(),
		func() map[string]any { a := activity("cleanup", "v-1", 1.0); a["participants"] = []any{}; return a }(),
	} {
		if st, code := pushOne(t, w, "volunteer.recordActivity", bad); st != "rejected" || code != "invalid_args" {
			t.Errorf("bad activity %v: %s %s", bad["participants"], st, code)
		}
	}
	var board struct{ Volunteers []volunteer.Volunteer }
	if st := d.Do("GET", "/v1/volunteers?sort=leaderboard", nil, &board); st != 200 || len(board.Volunteers) != 3 {
		t.Fatalf("leaderboard: %d %s", st, d.LastBody)
	}
	if b := board.Volunteers; b[0].ID != "v-3" || b[0].Balance != 50 || b[1].ID != "v-1" || b[1].Balance != 30 || b[2].Balance != 15 {
		t.Errorf("leaderboard: %+v", b)
	}
	stock := func(id string, points, n int) {
		if st := d.Do("PUT", "/v1/supermarket/"+id, map[string]any{"communityId": comm, "name": "物品" + id, "points": points, "stock": n}, nil); st != 200 {
			t.Fatalf("stock %s: %d %s", id, st, d.LastBody)
		}
	}
	stock("rice", 10, 100)
	stock("towel", 1, 3)
	if st, _ := w.Raw("PUT", "/v1/supermarket/soap", map[string]any{"communityId": comm, "name": "皂", "points": 5, "stock": 9}, nil); st != 403 {
		t.Errorf("a grid worker stocks the supermarket: %d", st)
	}
	if st, _ := d.Raw("PUT", "/v1/supermarket/soap", map[string]any{"communityId": comm, "name": "皂", "points": 0, "stock": -1}, nil); st != 400 {
		t.Errorf("bad article: %d", st)
	}

	redeemAll := func(volunteerID, item string, n int) map[int]int {
		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			c := h.Login("dispatcher", fmt.Sprintf("desk-r%s%d", item, i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _ := c.Raw("POST", "/v1/supermarket/redemptions", map[string]any{"redemptionId": fmt.Sprintf("red-%s-%d", item, i),
					"volunteerId": volunteerID, "itemId": item, "quantity": 1}, nil)
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return statuses
	}
	// v-3 holds 50 points: 5 bags of rice at 10.
	if got := redeemAll("v-3", "rice", 20); got[201] != 5 || got[409] != 15 {
		t.Errorf("20 concurrent redemptions over a balance for 5: %v", got)
	}
	// 3 towels in stock, v-1 can pay for all 10.
	if got := redeemAll("v-1", "towel", 10); got[201] != 3 || got[409] != 7 {
		t.Errorf("10 concurrent redemptions over a stock of 3: %v", got)
	}
	// A retried redemption is the same one.
	for i := 0; i < 2; i++ {
		if st := d.Do("POST", "/v1/supermarket/redemptions", map[string]any{"redemptionId": "red-retry", "volunteerId": "v-2", "itemId": "rice", "quantity": 1}, nil); st != 201 {
			t.Errorf("redemption, attempt %d: %d %s", i+1, st, d.LastBody)
		}
	}
	if st, _ := d.Raw("POST", "/v1/supermarket/redemptions", map[string]any{"redemptionId": "red-x", "volunteerId": "v-2", "itemId": "rice", "quantity": 0}, nil); st != 400 {
		t.Errorf("quantity 0: %d", st)
	}
	d.Do("GET", "/v1/volunteers", nil, &board)
	want := map[string]int{"v-1": 27, "v-2": 5, "v-3": 0}
	for _, v := range board.Volunteers {
		if v.Balance != want[v.ID] {
			t.Errorf("%s balance %d, want %d", v.ID, v.Balance, want[v.ID])
		}
		var l struct{ Entries []volunteer.Entry }
		if st := d.Do("GET", "/v1/volunteers/"+v.ID+"/points", nil, &l); st != 200 {
			t.Fatalf("ledger: %d", st)
		}
		sum := 0
		for _, e := range l.Entries {
			sum += e.Delta
		}
		if sum != v.Balance || l.Entries[len(l.Entries)-1].BalanceAfter != v.Balance {
			t.Errorf("%s: ledger sums to %d, balance %d", v.ID, sum, v.Balance)
		}
	}
	var items struct{ Items []volunteer.Item }
	d.Do("GET", "/v1/supermarket", nil, &items)
	for _, it := range items.Items {
		if (it.ID == "towel" && it.Stock != 0) || (it.ID == "rice" && it.Stock != 94) {
			t.Errorf("stock of %s: %d", it.ID, it.Stock)
		}
	}
	if st, _ := p.other.Raw("GET", "/v1/volunteers/v-1/points", nil, nil); st != 404 {
		t.Errorf("another community reads the ledger: %d", st)
	}
}
