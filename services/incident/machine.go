package incident

import (
	"fmt"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
)

// Action is a move an incident can make.
type Action string

// Actions, named as the mutations that request them (incident.<action>).
const (
	ActReport   Action = "report"
	ActAccept   Action = "accept"
	ActAssign   Action = "assign"
	ActStart    Action = "start"
	ActResolve  Action = "resolve"
	ActVerify   Action = "verify"
	ActReopen   Action = "reopen"
	ActEscalate Action = "escalate"
	ActRefuse   Action = "refuse"
	ActDelayReq Action = "requestDelay"
	ActDelayOK  Action = "approveDelay"
	ActMerge    Action = "merge"
	ActComment  Action = "comment"
	ActRate     Action = "rate"
	ActHandDown Action = "handDown" // 交办: to a unit below, keeping the deadline set here
	ActTakeOver Action = "takeOver" // 督办: a unit above takes the item as its own
)

// transitions is the state machine of DESIGN §3: for each action, the statuses it may
// start from and the status it leads to ("" keeps the status). Guards on who may act
// live with each use case.
var transitions = map[Action]struct {
	from []Status
	to   Status
}{
	ActReport:   {nil, Reported},
	ActAccept:   {[]Status{Reported}, Accepted},
	ActAssign:   {[]Status{Accepted, Assigned}, Assigned},
	ActStart:    {[]Status{Assigned, Delayed}, InProgress},
	ActResolve:  {[]Status{Reported, Accepted, Assigned, InProgress, Delayed}, Resolved}, // from reported: on the spot (就地解决) only
	ActVerify:   {[]Status{Resolved}, Closed},
	ActReopen:   {[]Status{Resolved, Closed}, InProgress},
	ActEscalate: {[]Status{Reported, Accepted, Assigned, InProgress}, Reported},
	ActRefuse:   {[]Status{Reported, Accepted}, Refused},
	ActDelayReq: {[]Status{Accepted, Assigned, InProgress}, ""},
	ActDelayOK:  {[]Status{Accepted, Assigned, InProgress}, Delayed},
	ActMerge:    {[]Status{Reported, Accepted}, Duplicate},
	ActComment:  {[]Status{Reported, Accepted, Assigned, InProgress, Delayed, Resolved, Closed, Refused, Duplicate}, ""},
	ActRate:     {[]Status{Closed}, ""}, // unsatisfied: back to in_progress, once
	ActHandDown: {[]Status{Reported, Accepted, Assigned, InProgress, Delayed}, Accepted},
	ActTakeOver: {[]Status{Reported, Accepted, Assigned, InProgress, Delayed}, Accepted},
}

// next checks that action may happen in status and returns the status after it.
func next(from Status, action Action) (Status, error) {
	t, ok := transitions[action]
	if !ok {
		return "", fault.New(fault.Unprocessable, "unknown_action", fmt.Sprintf("unknown action %q", action))
	}
	if t.from != nil {
		allowed := false
		for _, s := range t.from {
			if s == from {
				allowed = true
				break
			}
		}
		if !allowed {
			return "", fault.New(fault.Conflict, "invalid_transition",
				fmt.Sprintf("cannot %s an incident that is %s", action, from))
		}
	}
	if t.to == "" {
		return from, nil
	}
	return t.to, nil
}
