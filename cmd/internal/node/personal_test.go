package node_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/pkg/seal"
	"github.com/gridkeeper/gridkeeper/services/household"
	"go.mongodb.org/mongo-driver/v2/bson"
)

const (
	testIDCard = "11010519491231002X"
	testPhone  = "13812345678"
)

// rawHousehold is the household as the database holds it.
func rawHousehold(t *testing.T, h *nodetest.Harness, id string) string {
	t.Helper()
	raw, err := h.Node.DB.Collection(household.Coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	return raw.String()
}

// pulledHousehold returns the household as a client's pull delivers it.
func pulledHousehold(t *testing.T, c *nodetest.Client, id string) household.Household {
	t.Helper()
	var out household.Household
	for cursor := ""; ; {
		_, p := c.Pull(cursor, 500)
		for _, ch := range p.Changes {
			if ch.Collection == household.Coll && ch.ID == id {
				if err := json.Unmarshal(ch.Doc, &out); err != nil {
					t.Fatal(err)
				}
			}
		}
		if cursor = p.Cursor; !p.HasMore {
			return out
		}
	}
}

// Residents' ID-card and phone numbers: validated (check character, mobile format),
// sealed in the database (the raw document holds neither number), masked on every
// phone; read in clear only by the roles that need them, with a reason, each read in
// the access log the discipline officer reads; a handset sending back the masks it
// holds keeps the stored numbers; conflicts show masks only.
func TestPersonalData(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	w, d := h.Login("worker1", "phone-p"), h.Login("dispatcher", "desk-p")
	disc, other := h.Login("discipline", "dsc-p"), h.Login("workerb", "phone-pb")
	member := func(id, phone string) map[string]any {
		return map[string]any{"residentId": "r-1", "name": "王大爷", "relation": "head", "idCard": id, "phone": phone,
			"gender": "male", "birthDate": "1949-12-31", "tags": []string{"elderly_alone"}}
	}
	create := func(hid string, m map[string]any) (string, string) {
		return pushOne(t, w, "household.create", map[string]any{"householdId": hid, "building": "3号楼", "room": "101",
			"members": []any{m, map[string]any{"name": "王大妈", "relation": "spouse"}}})
	}
	for _, bad := range []map[string]any{
		member("110105194912310021", testPhone), // wrong check character
		member("11010519491331002X", testPhone), // month 13
		member(testIDCard, "1381234567"),        // 10 digits
		member(testIDCard, "23812345678"),       // not a mobile
		member("110105********002X", testPhone), // a mask with nothing stored behind it
		member("s1.abcdef12.AAAA", testPhone),   // a sealed value smuggled in
	} {
		if st, code := create("hh-bad", bad); st != "rejected" || code != "invalid_args" {
			t.Errorf("create with %v: %s %s", bad, st, code)
		}
	}
	if n, _ := h.Node.DB.Collection(household.Coll).CountDocuments(context.Background(), bson.D{}); n != 0 {
		t.Fatalf("refused creates stored %d households", n)
	}
	if st, code := create("hh-p1", member(strings.ToLower(testIDCard), testPhone)); st != "applied" {
		t.Fatalf("create: %s %s", st, code)
	}
	raw := rawHousehold(t, h, "hh-p1")
	if strings.Contains(raw, testIDCard) || strings.Contains(raw, testPhone) || strings.Contains(raw, "5678") || !strings.Contains(raw, "s1.") {
		t.Errorf("the stored document holds personal data in clear: %s", raw)
	}
	got := pulledHousehold(t, w, "hh-p1")
	if len(got.Members) != 2 || got.Members[0].IDCard != "110105********002X" || got.Members[0].Phone != "138****5678" || got.Members[1].ResidentID == "" {
		t.Fatalf("pulled household: %+v", got.Members)
	}

	// In clear: the grid worker with a reason; the dispatcher's role does not need
	// it; another community's worker is told it does not exist.
	var clear household.Household
	if st := w.Do("GET", "/v1/households/hh-p1/personal?reason=核实低保申请人身份", nil, &clear); st != 200 ||
		clear.Members[0].IDCard != testIDCard || clear.Members[0].Phone != testPhone {
		t.Fatalf("personal read: %d %s", st, w.LastBody)
	}
	for _, c := range []struct {
		who  *nodetest.Client
		url  string
		want int
	}{
		{w, "/v1/households/hh-p1/personal", 400},
		{w, "/v1/households/hh-p1/personal?reason=" + strings.Repeat("长", 201), 400},
		{d, "/v1/households/hh-p1/personal?reason=x", 403},
		{disc, "/v1/households/hh-p1/personal?reason=x", 403},
		{other, "/v1/households/hh-p1/personal?reason=x", 404},
		{w, "/v1/households/nope/personal?reason=x", 404},
		{w, "/v1/households/%24ne/personal?reason=x", 404},
	} {
		if st, body := c.who.Raw("GET", c.url, nil, nil); st != c.want {
			t.Errorf("%s GET %s: %d %s, want %d", c.who.Device, c.url, st, body, c.want)
		}
	}
	var log struct{ Accesses []household.Access }
	if st := disc.Do("GET", "/v1/access-log", nil, &log); st != 200 || len(log.Accesses) != 1 {
		t.Fatalf("access log: %d %s", st, disc.LastBody)
	}
	if e := log.Accesses[0]; e.UserID != "worker1" || e.DeviceID != "phone-p" || e.HouseholdID != "hh-p1" || e.Reason != "核实低保申请人身份" || e.Residents != 2 {
		t.Errorf("access log entry: %+v", e)
	}
	for _, c := range []*nodetest.Client{d, w} {
		if st, _ := c.Raw("GET", "/v1/access-log", nil, nil); st != 403 {
			t.Errorf("%s reads the access log: %d", c.Device, st)
		}
	}
	if st, _ := disc.Raw("GET", "/v1/access-log?from=yesterday", nil, nil); st != 400 {
		t.Errorf("a bad from: %d", st)
	}

	// The handset sends the members back as it holds them (masked), renaming one: the
	// numbers stay; a mask of another number is refused.
	edited := []any{map[string]any{"residentId": "r-1", "name": "王大爷（户主）", "relation": "head", "idCard": "110105********002X", "phone": "138****5678"},
		map[string]any{"residentId": got.Members[1].ResidentID, "name": "王大妈", "relation": "spouse"}}
	if st, code := pushOne(t, w, "household.update", map[string]any{"householdId": "hh-p1", "baseVersion": 1, "set": map[string]any{"members": edited}}); st != "applied" {
		t.Fatalf("update with masks: %s %s", st, code)
	}
	if st := w.Do("GET", "/v1/households/hh-p1/personal?reason=复核", nil, &clear); st != 200 || clear.Members[0].IDCard != testIDCard ||
		clear.Members[0].Phone != testPhone || clear.Members[0].Name != "王大爷（户主）" {
		t.Errorf("after an edit with masks: %+v", clear.Members)
	}
	wrong := []any{map[string]any{"residentId": "r-1", "name": "王大爷", "relation": "head", "phone": "139****5678"}}
	if st, code := pushOne(t, w, "household.update", map[string]any{"householdId": "hh-p1", "baseVersion": 2, "set": map[string]any{"members": wrong}}); st != "rejected" || code != "invalid_args" {
		t.Errorf("a mask of another number: %s %s", st, code)
	}
	// A handset that predates the personal fields sends the members without ids or
	// numbers: the residents keep their ids and numbers; "-" clears a number.
	old := []any{map[string]any{"name": "王大爷（户主）", "relation": "head", "tags": []string{"elderly_alone", "disabled"}},
		map[string]any{"name": "王大妈", "relation": "spouse"}}
	if st, code := pushOne(t, w, "household.update", map[string]any{"householdId": "hh-p1", "baseVersion": 2, "set": map[string]any{"members": old}}); st != "applied" {
		t.Fatalf("update from an old handset: %s %s", st, code)
	}
	clear = household.Household{}
	if st := w.Do("GET", "/v1/households/hh-p1/personal?reason=复核", nil, &clear); st != 200 || clear.Members[0].ResidentID != "r-1" ||
		clear.Members[0].IDCard != testIDCard || clear.Members[0].Phone != testPhone || len(clear.Members[0].Tags) != 2 {
		t.Errorf("after an old handset's edit: %+v", clear.Members[0])
	}
	cleared := []any{map[string]any{"residentId": "r-1", "name": "王大爷（户主）", "relation": "head", "phone": "-"},
		map[string]any{"name": "王大妈", "relation": "spouse"}}
	if st, code := pushOne(t, w, "household.update", map[string]any{"householdId": "hh-p1", "baseVersion": 3, "set": map[string]any{"members": cleared}}); st != "applied" {
		t.Fatalf("clear a phone: %s %s", st, code)
	}
	clear = household.Household{} // decoding into the old value would keep fields now absent
	if w.Do("GET", "/v1/households/hh-p1/personal?reason=复核", nil, &clear); clear.Members[0].Phone != "" || clear.Members[0].IDCard != testIDCard {
		t.Errorf("after clearing the phone: %+v", clear.Members[0])
	}
	// A losing offline edit of the members: the conflict shows masks only.
	stale := []any{map[string]any{"residentId": "r-1", "name": "王某", "relation": "head", "phone": "13900001111"}}
	if st, _ := pushOne(t, d, "household.update", map[string]any{"householdId": "hh-p1", "baseVersion": 1, "set": map[string]any{"members": stale}}); st != "applied" {
		t.Fatalf("stale edit: %s", st)
	}
	var cs struct{ Conflicts []household.Conflict }
	if st := d.Do("GET", "/v1/conflicts", nil, &cs); st != 200 || len(cs.Conflicts) != 1 {
		t.Fatalf("conflicts: %d %s", st, d.LastBody)
	}
	if c := cs.Conflicts[0]; strings.Contains(string(c.Yours), "13900001111") || strings.Contains(string(c.Kept), testPhone) || !strings.Contains(string(c.Yours), "139****1111") {
		t.Errorf("conflict with personal data in clear: yours %s kept %s", c.Yours, c.Kept)
	}
}

// Key rotation: a node restarted with a new GRID_DATA_KEY and the old one in
// GRID_DATA_KEYS_PREVIOUS still reads everything; a reseal moves every stored number
// to the new key; then the old key can go.
func TestDataKeyRotation(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	w := h.Login("worker1", "phone-k")
	for _, id := range []string{"hh-k1", "hh-k2"} {
		if st, code := pushOne(t, w, "household.create", map[string]any{"householdId": id, "building": "1号楼",
			"members": []any{map[string]any{"name": "李四", "idCard": testIDCard, "phone": testPhone}}}); st != "applied" {
			t.Fatalf("create: %s %s", st, code)
		}
	}
	oldKey, _ := seal.ParseKey(nodetest.TestDataKey)
	newKey := seal.NewKey()
	nk, _ := seal.ParseKey(newKey)
	h.Restart(func(c *node.Config, _ *node.Options) { c.DataKey, c.DataKeysOld = newKey, nodetest.TestDataKey })
	w = h.Login("worker1", "phone-k")
	var clear household.Household
	if st := w.Do("GET", "/v1/households/hh-k1/personal?reason=轮换后核对", nil, &clear); st != 200 || clear.Members[0].IDCard != testIDCard {
		t.Fatalf("read with the previous key kept: %d %s", st, w.LastBody)
	}
	admin := h.Login("admin", "adm-k")
	if st, _ := w.Raw("POST", "/v1/admin/personal-data/reseal", nil, nil); st != 403 {
		t.Errorf("a worker reseals: %d", st)
	}
	var r household.ResealReport
	if st := admin.Do("POST", "/v1/admin/personal-data/reseal", nil, &r); st != 200 || r.Stale != 2 || r.Resealed != 2 || r.Key != seal.KeyID(nk) {
		t.Fatalf("reseal: %d %+v", st, r)
	}
	if raw := rawHousehold(t, h, "hh-k1"); strings.Contains(raw, "s1."+seal.KeyID(oldKey)) || !strings.Contains(raw, "s1."+seal.KeyID(nk)) {
		t.Errorf("after the reseal the document still uses the old key: %s", raw)
	}
	if st := admin.Do("POST", "/v1/admin/personal-data/reseal", nil, &r); st != 200 || r.Stale != 0 {
		t.Errorf("a second reseal: %+v", r)
	}
	h.Restart(func(c *node.Config, _ *node.Options) { c.DataKey, c.DataKeysOld = newKey, "" })
	w = h.Login("worker1", "phone-k")
	if st := w.Do("GET", "/v1/households/hh-k2/personal?reason=旧钥匙已删除", nil, &clear); st != 200 || clear.Members[0].Phone != testPhone {
		t.Errorf("read without the old key: %d %s", st, w.LastBody)
	}
	if got := pulledHousehold(t, w, "hh-k2"); got.Members[0].Phone != "138****5678" {
		t.Errorf("pulled after the rotation: %+v", got.Members)
	}
	// A gridd given another key (or none, generating its own) refuses to start rather
	// than seal what the others cannot open.
	h.Stop()
	cfg := h.Cfg
	cfg.DataKey = seal.NewKey()
	if n, err := node.Start(t.Context(), cfg, h.Opts); err == nil || !strings.Contains(err.Error(), "not the deployment's data key") {
		if n != nil {
			n.Stop(t.Context())
		}
		t.Errorf("a gridd with another data key started: %v", err)
	}
}
