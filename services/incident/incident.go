// Package incident owns an incident's life: the state machine of DESIGN §3 with its
// guards, the rules of the source text it enforces, and the commands that move an
// incident, applied by the single writer of its partition.
package incident

import (
	"time"

	"github.com/gridkeeper/gridkeeper/services/org"
)

// Status of an incident.
type Status string

// Statuses, as handsets receive them.
const (
	Reported   Status = "reported"
	Accepted   Status = "accepted"
	Assigned   Status = "assigned"
	InProgress Status = "in_progress"
	Delayed    Status = "delayed"
	Resolved   Status = "resolved"
	Closed     Status = "closed"
	Refused    Status = "refused"
	Duplicate  Status = "duplicate"
)

// Final reports whether nothing more happens to an item in the status (a closed item
// may still be rated, which reopens it, but it is not open work).
func (s Status) Final() bool { return s == Closed || s == Refused || s == Duplicate }

// Point is a GPS position (WGS-84).
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Requester is the resident who asked, when there is one (personal data).
type Requester struct {
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
}

// HistoryEntry is one line of the append-only history.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Device string    `json:"device,omitempty"`
	Action string    `json:"action"`
	From   Status    `json:"from,omitempty"`
	To     Status    `json:"to,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Unit   string    `json:"unitId,omitempty"`
}

// Incident is the record. Its JSON form is the binding wire format of
// SYNC-PROTOCOL.md ("Records as they arrive").
type Incident struct {
	ID           string     `json:"id"`
	Status       Status     `json:"status"`
	Level        int        `json:"level"`
	UnitID       string     `json:"unitId"`
	GridID       string     `json:"gridId"`
	Category     string     `json:"category"`
	Description  string     `json:"description"`
	Location     Point      `json:"location"`
	Address      string     `json:"address,omitempty"`
	Photos       []string   `json:"photos"`
	Urgent       bool       `json:"urgent"`
	Special      bool       `json:"special"`
	Source       string     `json:"source"`
	Requester    *Requester `json:"requester,omitempty"`
	ReporterID   string     `json:"reporterId"`
	FirstOwnerID string     `json:"firstOwnerId"`
	AssigneeID   string     `json:"assigneeId"`
	DueAt        *time.Time `json:"dueAt"`
	// AcceptBy is when a reported item must be accepted (or refused, or passed up) by
	// its owning unit: 1 working day after it arrived there, an hour when urgent.
	AcceptBy  *time.Time     `json:"acceptBy,omitempty"`
	Overdue   bool           `json:"overdue"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
	ClosedAt  *time.Time     `json:"closedAt,omitempty"`
	Version   int64          `json:"version"`
	History   []HistoryEntry `json:"history"`

	// The outcome of the moves after the report.
	Result       string        `json:"result,omitempty"`
	ResultPhotos []string      `json:"resultPhotos,omitempty"`
	ResolvedAt   *time.Time    `json:"resolvedAt,omitempty"`
	Refusal      *Refusal      `json:"refusal,omitempty"`
	PendingDelay *DelayRequest `json:"pendingDelay,omitempty"`
	Delays       []Delay       `json:"delays,omitempty"`
	DuplicateOf  string        `json:"mergedInto,omitempty"`
	// LikelyDuplicateOf flags, for the dispatcher, open items of the same category
	// reported within 50 m in the day before this one (nearest first).
	LikelyDuplicateOf []string  `json:"likelyDuplicateOf,omitempty"`
	Rating            *Rating   `json:"rating,omitempty"`
	Comments          []Comment `json:"comments,omitempty"`
	Reopens           int       `json:"reopenCount"`
	ReopenedByRating  bool      `json:"reopenedByRating,omitempty"`
	Escalations       int       `json:"escalations"`

	// key is the partition key the incident was stored under: its writer for life,
	// even when escalation moves it to a unit of another community.
	key string
	// timers are the deadlines scheduled for the incident as stored, so a write can
	// tell which of them changed.
	timers deadlines
}

// Refusal is a refused incident's filing (否定报备): the reason, who refused, and
// whether it was filed later than 1 working day after the unit received the item.
type Refusal struct {
	Reason     string    `json:"reason" bson:"reason"`
	By         string    `json:"by" bson:"by"`
	Unit       string    `json:"unit" bson:"unit"`
	At         time.Time `json:"at" bson:"at"`
	ReceivedAt time.Time `json:"receivedAt" bson:"receivedAt"`
	Late       bool      `json:"late" bson:"late"`
	// RequesterNotice says how and when the requester was told.
	RequesterNotice string `json:"requesterNotice,omitempty" bson:"requesterNotice,omitempty"`
}

// Comment is a remark on an incident by someone who sees it.
type Comment struct {
	ID     string    `json:"id" bson:"id"`
	By     string    `json:"by" bson:"by"`
	At     time.Time `json:"at" bson:"at"`
	Text   string    `json:"text" bson:"text"`
	Photos []string  `json:"photos,omitempty" bson:"photos,omitempty"`
}

// DelayRequest is a delay waiting for approval.
type DelayRequest struct {
	Reason           string    `json:"reason" bson:"reason"`
	By               string    `json:"by" bson:"by"`
	At               time.Time `json:"at" bson:"at"`
	DueAt            time.Time `json:"dueAt" bson:"dueAt"`
	RequesterContact string    `json:"requesterContact,omitempty" bson:"requesterContact,omitempty"`
}

// Delay is an approved delay (滞办反馈): when, why, who approved it, how the requester
// is reached, and the notice issued to them.
type Delay struct {
	Reason           string     `json:"reason" bson:"reason"`
	RequestedBy      string     `json:"requestedBy" bson:"requestedBy"`
	RequestedAt      time.Time  `json:"requestedAt" bson:"requestedAt"`
	ApprovedBy       string     `json:"approvedBy" bson:"approvedBy"`
	ApprovedAt       time.Time  `json:"approvedAt" bson:"approvedAt"`
	OldDueAt         *time.Time `json:"oldDueAt,omitempty" bson:"oldDueAt,omitempty"`
	NewDueAt         time.Time  `json:"newDueAt" bson:"newDueAt"`
	RequesterContact string     `json:"requesterContact,omitempty" bson:"requesterContact,omitempty"`
	Notice           Names      `json:"notice" bson:"notice"`
}

// Rating is the requester's evaluation of a closed item (服务评价).
type Rating struct {
	Value   string    `json:"value" bson:"value"`
	Comment string    `json:"comment,omitempty" bson:"comment,omitempty"`
	By      string    `json:"by" bson:"by"`
	At      time.Time `json:"at" bson:"at"`
}

// ScopeUnit is the unit whose subtree sees the incident: its grid, or its owner when
// it has no grid.
func (i *Incident) ScopeUnit() string {
	if i.GridID != "" {
		return i.GridID
	}
	return i.UnitID
}

// Wire returns the incident as handsets receive it, personal data masked.
func (i Incident) Wire() Incident {
	if i.Requester != nil {
		r := *i.Requester
		r.Phone = MaskPhone(r.Phone)
		i.Requester = &r
	}
	if i.PendingDelay != nil {
		p := *i.PendingDelay
		p.RequesterContact = MaskPhone(p.RequesterContact)
		i.PendingDelay = &p
	}
	if len(i.Delays) > 0 {
		ds := make([]Delay, len(i.Delays))
		for k, d := range i.Delays {
			d.RequesterContact = MaskPhone(d.RequesterContact)
			ds[k] = d
		}
		i.Delays = ds
	}
	return i
}

// MaskPhone keeps the first 3 and last 4 digits of a phone number.
func MaskPhone(p string) string { return org.MaskPhone(p) }
