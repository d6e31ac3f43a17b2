package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/complaint"
)

// Complaints about staff: filed as a mutation, due the next working day (5 when
// complex), read only by the discipline officer — with the complainant — and never on
// the change feed; bad arguments rejected.
func TestComplaints(t *testing.T) {
	clock := nodetest.NewClock()
	clock.Advance(shanghai("2026-10-09 11:00").Sub(clock.Now())) // a Friday
	h, p := startLifecycle(t, clock)
	file := func(c *nodetest.Client, args map[string]any) (string, string) {
		return pushOne(t, c, "complaint.file", args)
	}
	simple, complexID := newID(t), newID(t)
	if st, code := file(p.worker, map[string]any{"complaintId": simple, "text": "网格员态度恶劣", "aboutUserId": "handler",
		"complainant": map[string]any{"name": "李先生", "phone": "13912345678"}}); st != "applied" {
		t.Fatalf("file: %s %s", st, code)
	}
	if st, code := file(p.dispatcher, map[string]any{"complaintId": complexID, "text": "多部门推诿", "aboutUnitId": nodetest.CommunityA, "complex": true}); st != "applied" {
		t.Fatalf("file complex: %s %s", st, code)
	}
	for _, bad := range []map[string]any{
		{"complaintId": newID(t), "text": ""},
		{"complaintId": "x", "text": "a"},
		{"complaintId": newID(t), "text": strings.Repeat("长", 4001)},
		{"complaintId": newID(t), "text": "a", "complainant": map[string]any{"name": "王", "phone": "123"}},
		{"complaintId": newID(t), "text": "a", "aboutUnitId": "$ne"},
		{"complaintId": simple, "text": "again"},
	} {
		if st, code := file(p.worker, bad); st != "rejected" || (code != "invalid_args" && code != "already_exists") {
			t.Errorf("%v: %s %s", bad, st, code)
		}
	}
	var got struct{ Complaints []complaint.Complaint }
	disc := h.Login("discipline", "dsc-c")
	if st := disc.Do("GET", "/v1/complaints", nil, &got); st != 200 || len(got.Complaints) != 2 {
		t.Fatalf("discipline's list: %d %+v", st, got)
	}
	by := map[string]complaint.Complaint{}
	for _, c := range got.Complaints {
		by[c.ID] = c
	}
	s, c := by[simple], by[complexID]
	if s.Complainant == nil || s.Complainant.Phone != "13912345678" || s.FiledBy != "worker1" || s.Unit != nodetest.GridA(1) {
		t.Errorf("simple complaint: %+v", s)
	}
	// Filed Friday 2026-10-09 11:00: due the next working day, Saturday 10-10 (a make-up
	// workday); complex: 5 working days.
	if want := shanghai("2026-10-10 11:00"); !s.DueAt.Equal(want) {
		t.Errorf("due %v, want %v", s.DueAt, want)
	}
	if !c.Complex || !c.DueAt.After(shanghai("2026-10-15 00:00")) {
		t.Errorf("complex complaint due %v", c.DueAt)
	}
	for _, who := range []*nodetest.Client{p.dispatcher, p.street, p.worker} {
		if st, _ := who.Raw("GET", "/v1/complaints", nil, nil); st != 403 {
			t.Errorf("%s reads complaints: %d", who.Device, st)
		}
	}
	// Never on the change feed: no pull carries them.
	time.Sleep(100 * time.Millisecond)
	for _, who := range []*nodetest.Client{p.worker, p.dispatcher, p.street, disc} {
		for cursor := ""; ; {
			_, page := who.Pull(cursor, 500)
			for _, ch := range page.Changes {
				if ch.Collection == complaint.Coll {
					t.Errorf("%s pulled a complaint", who.Device)
				}
			}
			if cursor = page.Cursor; !page.HasMore {
				break
			}
		}
	}
}

// A complaint is answered by a discipline officer above the filer, once; an answer
// after the due time is flagged late, and an open complaint past its due time is
// listed as overdue. Others cannot answer; bad answers change nothing.
func TestComplaintAnswer(t *testing.T) {
	clock := nodetest.NewClock()
	clock.Advance(shanghai("2026-10-12 09:00").Sub(clock.Now())) // a Monday
	h, p := startLifecycle(t, clock)
	onTime, late := newID(t), newID(t)
	for _, id := range []string{onTime, late} {
		if st, code := pushOne(t, p.worker, "complaint.file", map[string]any{"complaintId": id, "text": "办事拖拉"}); st != "applied" {
			t.Fatalf("file: %s %s", st, code)
		}
	}
	for _, c := range []struct {
		by   *nodetest.Client
		args map[string]any
		want string
	}{
		{p.dispatcher, map[string]any{"complaintId": onTime, "answer": "已约谈"}, "forbidden"},
		{p.street, map[string]any{"complaintId": onTime, "answer": "已约谈"}, "forbidden"},
		{p.discipline, map[string]any{"complaintId": onTime, "answer": "  "}, "invalid_args"},
		{p.discipline, map[string]any{"complaintId": onTime, "answer": strings.Repeat("长", 4001)}, "invalid_args"},
		{p.discipline, map[string]any{"complaintId": "../x", "answer": "a"}, "invalid_args"},
		{p.discipline, map[string]any{"complaintId": newID(t), "answer": "a"}, "not_found"},
	} {
		if st, code := pushOne(t, c.by, "complaint.answer", c.args); st != "rejected" || code != c.want {
			t.Errorf("%s answers %v: %s %s, want %s", c.by.Device, c.args, st, code, c.want)
		}
	}
	if st, code := pushOne(t, p.discipline, "complaint.answer", map[string]any{"complaintId": onTime, "answer": "已约谈当事人并致歉"}); st != "applied" {
		t.Fatalf("answer: %s %s", st, code)
	}
	if st, code := pushOne(t, p.discipline, "complaint.answer", map[string]any{"complaintId": onTime, "answer": "again"}); code != "invalid_transition" {
		t.Errorf("a second answer: %s %s", st, code)
	}
	clock.Advance(30 * time.Hour) // Tuesday 15:00: past the next working day's 09:00
	disc := h.Login("discipline", "dsc-2")
	var got struct{ Complaints []complaint.Complaint }
	if st := disc.Do("GET", "/v1/complaints", nil, &got); st != 200 || len(got.Complaints) != 2 {
		t.Fatalf("list: %d %s", st, disc.LastBody)
	}
	for _, c := range got.Complaints {
		if c.ID == late && (c.Status != complaint.Open || !c.Overdue) {
			t.Errorf("unanswered past due: %+v", c)
		}
		if c.ID == onTime && (c.Status != complaint.Answered || c.Late || c.Overdue || c.AnsweredBy != "discipline" ||
			c.Answer != "已约谈当事人并致歉" || c.AnsweredAt == nil || !c.AnsweredAt.Equal(shanghai("2026-10-12 09:00"))) {
			t.Errorf("answered in time: %+v", c)
		}
	}
	if st, code := pushOne(t, disc, "complaint.answer", map[string]any{"complaintId": late, "answer": "已处理"}); st != "applied" {
		t.Fatalf("late answer: %s %s", st, code)
	}
	disc.Do("GET", "/v1/complaints", nil, &got)
	for _, c := range got.Complaints {
		if c.ID == late && (c.Status != complaint.Answered || !c.Late || c.Overdue) {
			t.Errorf("answered late: %+v", c)
		}
	}
}
