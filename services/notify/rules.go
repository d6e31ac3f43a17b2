package notify

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// subject is what a domain event says about its incident (or complaint, report,
// visit): the fields the rules read. Incident events carry the incident; routing
// decisions carry incidentId; an urgent item's overdue event wraps it in "incident".
type subject struct {
	ID           string     `json:"id"`
	IncidentID   string     `json:"incidentId"`
	Status       string     `json:"status"`
	UnitID       string     `json:"unitId"`
	Unit         string     `json:"unit"` // complaints
	Level        int        `json:"level"`
	Category     string     `json:"category"`
	Description  string     `json:"description"`
	Urgent       bool       `json:"urgent"`
	ReporterID   string     `json:"reporterId"`
	FirstOwnerID string     `json:"firstOwnerId"`
	AssigneeID   string     `json:"assigneeId"`
	DueAt        *time.Time `json:"dueAt"`
	Decision     string     `json:"decision"` // incident.routed: queue or up
	After        string     `json:"after"`    // incident.routed: what brought it
	Refusal      *struct {
		Reason string `json:"reason"`
	} `json:"refusal"`
	Delays []struct {
		ApprovedAt time.Time `json:"approvedAt"`
		NewDueAt   time.Time `json:"newDueAt"`
		Notice     Text      `json:"notice"`
	} `json:"delays"`
	Rating *struct {
		Value   string `json:"value"`
		Comment string `json:"comment"`
	} `json:"rating"`
	Month string `json:"month"` // report.refusalsFiled
	DueBy string `json:"dueBy"`
	// visit.overdue (households): the household and its grid worker.
	HouseholdID string `json:"householdId"`
	WorkerID    string `json:"workerId"`
	GridID      string `json:"gridId"`
	Count       int    `json:"count"`
	// Incident is set by an urgent item's overdue event.
	Incident *subject `json:"incident"`
}

// who is a set of people a rule tells.
type who int

const (
	assignee          who = iota // the handler the item is assigned to
	handlerOrDesk                // the assignee, or the owning unit's dispatchers when none
	reporter                     // the grid worker who reported it (holds the requester's contact)
	firstOwner                   // the first-inquiry owner (首问负责人)
	ownerDispatchers             // dispatchers of the owning unit
	parentSupervisors            // supervisors, leaders and dispatchers of the parent unit (督办)
	disciplineAbove              // discipline officers of the unit or above
	gridWorker                   // the worker of a household's grid (visits)
)

// rule is one line of who gets what on which event.
type rule struct {
	event string
	kind  string
	to    []who
	// when filters the events of the type the rule is for (nil: all).
	when func(s *subject) bool
	// urgent pushes through quiet hours.
	urgent func(s *subject) bool
	title  Text
	body   func(s *subject, cat Text) Text
}

// rules is who gets what, on which event (issue "Push notifications", DESIGN §3). The
// sync poke (every device whose scope changed) is the Poker's.
var rules = []rule{
	// An item waiting in a queue: new, or passed up by the router (an escalation by a
	// person has its own rule).
	{event: "incident.routed", kind: "queued", to: []who{ownerDispatchers},
		when:  func(s *subject) bool { return s.Decision == "queue" && s.After != "incident.escalated" },
		title: Text{"新事件待受理", "New item to accept"}, body: itemLine},
	{event: "incident.assigned", kind: "assigned", to: []who{assignee},
		title: Text{"您有新的办理任务", "An item was assigned to you"}, body: itemDue},
	{event: "incident.escalated", kind: "escalated", to: []who{ownerDispatchers},
		title: Text{"下级上报事件", "Item escalated to your unit"}, body: itemLine},
	{event: "incident.handedDown", kind: "handedDown", to: []who{ownerDispatchers},
		title: Text{"上级交办事件", "Item handed down to your unit"}, body: itemDue},
	{event: "incident.takenOver", kind: "takenOver", to: []who{ownerDispatchers},
		title: Text{"督办事件已由本单位接办", "Your unit took an item over"}, body: itemDue},
	{event: "incident.dueSoon", kind: "dueSoon", to: []who{handlerOrDesk},
		title: Text{"事件即将到期", "Item due soon"}, body: itemDue},
	{event: "incident.overdue", kind: "overdue", to: []who{handlerOrDesk, parentSupervisors}, urgent: isUrgent,
		title: Text{"事件已超期（督办）", "Item overdue (supervision)"}, body: itemDue},
	{event: "incident.resolved", kind: "resolved", to: []who{reporter, firstOwner},
		title: Text{"事件已办结，待核查", "Item resolved, awaiting verification"}, body: itemLine},
	{event: "incident.closed", kind: "closed", to: []who{reporter, firstOwner},
		title: Text{"事件已结案", "Item closed"}, body: itemLine},
	{event: "incident.refused", kind: "refused", to: []who{reporter},
		title: Text{"事件不予受理，请告知反映人", "Item refused: tell the requester why"}, body: refusedLine},
	{event: "incident.delayDecided", kind: "delayed", to: []who{reporter}, when: approvedDelay,
		title: Text{"延期办理告知，请转告反映人", "Delay notice for the requester"}, body: delayNotice},
	{event: "incident.rated", kind: "unsatisfied", to: []who{ownerDispatchers}, when: unsatisfied,
		title: Text{"群众评价不满意", "Rated unsatisfied"}, body: itemLine},
	{event: "complaint.filed", kind: "complaintFiled", to: []who{disciplineAbove},
		title: Text{"收到新的投诉", "New complaint"}, body: complaintLine},
	{event: "report.refusalsFiled", kind: "refusalReport", to: []who{disciplineAbove},
		title: Text{"否定报备月报已生成", "Monthly refusal report filed"}, body: reportLine},
	{event: "visit.overdue", kind: "visitOverdue", to: []who{gridWorker},
		title: Text{"走访已逾期", "Visit overdue"}, body: visitLine},
}

// Events lists the domain events the rules act on.
func Events() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rules {
		if !seen[r.event] {
			seen[r.event] = true
			out = append(out, r.event)
		}
	}
	return out
}

func isUrgent(s *subject) bool { return s.Urgent }

func approvedDelay(s *subject) bool { return s.Status == "delayed" && len(s.Delays) > 0 }

func unsatisfied(s *subject) bool {
	return s.Rating != nil && s.Rating.Value == "unsatisfied"
}

func short(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func itemLine(s *subject, cat Text) Text {
	id := short(or(s.ID, s.IncidentID))
	return Text{
		Zh: strings.TrimSpace(fmt.Sprintf("%s（编号%s）%s", or(cat.Zh, s.Category), id, clip(s.Description, 40))),
		En: strings.TrimSpace(fmt.Sprintf("%s (no. %s) %s", or(cat.En, s.Category), id, clip(s.Description, 40))),
	}
}

func itemDue(s *subject, cat Text) Text {
	t := itemLine(s, cat)
	if s.DueAt != nil {
		due := s.DueAt.In(workday.Location())
		t.Zh += "，请于" + due.Format("1月2日 15:04") + "前办结"
		t.En += ", due " + due.Format("2 Jan 15:04")
	}
	return t
}

func refusedLine(s *subject, cat Text) Text {
	t := itemLine(s, cat)
	if s.Refusal != nil {
		t.Zh += "。理由：" + s.Refusal.Reason
		t.En += ". Reason: " + s.Refusal.Reason
	}
	return t
}

// delayNotice is the 滞办反馈 text generated when the delay was approved: the reporter
// holds the requester's contact and passes it on.
func delayNotice(s *subject, _ Text) Text {
	return s.Delays[len(s.Delays)-1].Notice
}

func complaintLine(s *subject, _ Text) Text {
	due := ""
	if s.DueAt != nil {
		due = s.DueAt.In(workday.Location()).Format("1月2日 15:04")
	}
	return Text{
		Zh: fmt.Sprintf("编号%s，来自%s，请于%s前答复", short(s.ID), s.Unit, due),
		En: fmt.Sprintf("No. %s from %s; answer by %s", short(s.ID), s.Unit, due),
	}
}

func reportLine(s *subject, _ Text) Text {
	return Text{
		Zh: fmt.Sprintf("%s月否定报备报告已生成，请于%s前报送", s.Month, s.DueBy),
		En: fmt.Sprintf("The refusal report of %s is filed; due by %s", s.Month, s.DueBy),
	}
}

func visitLine(s *subject, _ Text) Text {
	return Text{Zh: fmt.Sprintf("网格%s有%d户走访逾期", s.GridID, s.Count),
		En: fmt.Sprintf("%d households in grid %s are overdue for a visit", s.Count, s.GridID)}
}

// ancestors lists unit and every unit above it.
func ancestors(unit string) []string {
	var out []string
	for u := unit; u != ""; u = org.Parent(u) {
		out = append(out, u)
	}
	return out
}
