// Package incident owns an incident's life: the state machine of DESIGN §3 with its
// guards, the rules of the source text it enforces, and the commands that move an
// incident, applied by the single writer of its partition.
package incident

import (
	"time"
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
	Unit   string    `json:"unit,omitempty"`
}

// Incident is the record. Its JSON form is the binding wire format of
// SYNC-PROTOCOL.md ("Records as they arrive").
type Incident struct {
	ID           string         `json:"id"`
	Status       Status         `json:"status"`
	Level        int            `json:"level"`
	UnitID       string         `json:"unitId"`
	GridID       string         `json:"gridId"`
	Category     string         `json:"category"`
	Description  string         `json:"description"`
	Location     Point          `json:"location"`
	Address      string         `json:"address,omitempty"`
	Photos       []string       `json:"photos"`
	Urgent       bool           `json:"urgent"`
	Special      bool           `json:"special"`
	Source       string         `json:"source"`
	Requester    *Requester     `json:"requester,omitempty"`
	ReporterID   string         `json:"reporterId"`
	FirstOwnerID string         `json:"firstOwnerId"`
	AssigneeID   string         `json:"assigneeId"`
	DueAt        *time.Time     `json:"dueAt"`
	Overdue      bool           `json:"overdue"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
	ClosedAt     *time.Time     `json:"closedAt,omitempty"`
	Version      int64          `json:"version"`
	History      []HistoryEntry `json:"history"`
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
	return i
}

// MaskPhone keeps the first 3 and last 4 digits of a phone number.
func MaskPhone(p string) string {
	if len(p) < 8 {
		return p
	}
	return p[:3] + "****" + p[len(p)-4:]
}
