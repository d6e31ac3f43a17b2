package node_test

import (
	"encoding/json"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// Two offline edits of one household, both based on version 1: the fields they do not
// share merge; for the shared field the edit committed first is kept and the other is
// reported to its author (in its pull) and listed for the unit's supervisors.
func TestConflictingHouseholdEdits(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	w := h.Login("worker1", "phone-a")
	d := h.Login("dispatcher", "web-d")
	create := map[string]any{"householdId": "hh-test-1", "building": "3号楼", "unit": "1单元", "room": "201",
		"address": "大同路3号", "members": []map[string]any{{"name": "张三", "relation": "head"}}}
	if _, r := w.Push(w.Queue([]string{"household.create"}, []any{create})); r.Results[0].Status != "applied" {
		t.Fatalf("create: %+v", r.Results)
	}
	edit := func(c *nodetest.Client, set map[string]any) nodetest.PushResult {
		_, r := c.Push(c.Queue([]string{"household.update"}, []any{map[string]any{"householdId": "hh-test-1", "baseVersion": 1, "set": set}}))
		return r
	}
	if r := edit(w, map[string]any{"address": "大同路3号院", "room": "202"}); r.Results[0].Status != "applied" {
		t.Fatalf("first edit: %+v", r.Results)
	}
	if r := edit(d, map[string]any{"address": "大同路5号", "tags": []string{"elderly_alone"}}); r.Results[0].Status != "applied" {
		t.Fatalf("second edit: %+v", r.Results)
	}
	var got struct {
		Address, Room string
		Tags          []string
		Version       int64
	}
	_, p := d.Pull("", 500)
	for _, c := range p.Changes {
		if c.ID == "hh-test-1" {
			_ = json.Unmarshal(c.Doc, &got)
		}
	}
	if got.Address != "大同路3号院" || got.Room != "202" || len(got.Tags) != 1 || got.Version != 3 {
		t.Errorf("merged household: %+v", got)
	}
	var conflicts []struct {
		RecordID, Field, Rule, Author string
		Yours, Kept                   json.RawMessage
	}
	var raw struct{ Conflicts json.RawMessage }
	d.Do("POST", "/v1/sync/pull", map[string]any{"clientId": "web-d", "schemaVersion": 1, "cursor": ""}, &raw)
	_ = json.Unmarshal(raw.Conflicts, &conflicts)
	if len(conflicts) != 1 || conflicts[0].Field != "address" || string(conflicts[0].Yours) != `"大同路5号"` ||
		string(conflicts[0].Kept) != `"大同路3号院"` || conflicts[0].Rule == "" || conflicts[0].Author != "dispatcher" {
		t.Errorf("the author's pull reports the conflict: %s", raw.Conflicts)
	}
	w.Do("POST", "/v1/sync/pull", map[string]any{"clientId": "phone-a", "schemaVersion": 1, "cursor": ""}, &raw)
	if string(raw.Conflicts) != "[]" {
		t.Errorf("the edit that won has no conflict: %s", raw.Conflicts)
	}
	for login, want := range map[string]int{"dispatcher": 1, "street": 1, "dispatcherb": 0} {
		var list struct{ Conflicts []json.RawMessage }
		if st := h.Login(login, "list-"+login).Do("GET", "/v1/conflicts", nil, &list); st != 200 || len(list.Conflicts) != want {
			t.Errorf("%s lists %d conflicts (status %d), want %d", login, len(list.Conflicts), st, want)
		}
	}
	st, body := w.Raw("GET", "/v1/conflicts", nil, nil)
	wantErr(t, "a worker listing conflicts", st, body, 403, "forbidden")
	// Bad edits are rejected on their own.
	r := edit(w, map[string]any{"colour": "red"})
	if r.Results[0].Status != "rejected" || r.Results[0].Error.Code != "invalid_args" {
		t.Errorf("an unknown field: %+v", r.Results[0])
	}
	_, r2 := w.Push(w.Queue([]string{"household.update"}, []any{map[string]any{"householdId": "hh-test-1", "baseVersion": 9, "set": map[string]any{"room": "1"}}}))
	if r2.Results[0].Status != "rejected" {
		t.Errorf("a base version from the future: %+v", r2.Results[0])
	}
	b := h.Login("workerb", "phone-b")
	_, r3 := b.Push(b.Queue([]string{"household.update"}, []any{map[string]any{"householdId": "hh-test-1", "baseVersion": 3, "set": map[string]any{"room": "1"}}}))
	if r3.Results[0].Status != "rejected" || r3.Results[0].Error.Code != "not_found" {
		t.Errorf("a worker of another community: %+v", r3.Results[0])
	}
}
