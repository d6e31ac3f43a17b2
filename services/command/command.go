// Package command is the single write path of the system (DESIGN invariants 1–4):
// every state change is a Command published to a JetStream stream partitioned by the
// immutable key of the record it touches; one Applier per partition applies them in
// stream order, many per database round trip, exactly once in effect, and publishes
// the resulting events, change-feed records and outcomes from a journal that survives
// a crash between the database write and the publish.
package command

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/gridkeeper/gridkeeper/services/org"
)

// Command is one requested state change.
type Command struct {
	// ID is unique for all time: "<clientId>:<mutationId>" for handset mutations,
	// "sys-<uuid>" for commands the server or an admin makes.
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
	// Actor is who asked, with the rights they had when asking.
	Actor org.Actor `json:"actor"`
	// ClientID and MutationID are set for handset mutations.
	ClientID   string    `json:"clientId,omitempty"`
	MutationID int64     `json:"mutationId,omitempty"`
	ClientTime time.Time `json:"clientTime,omitzero"`
	// IssuedAt is the server time the command entered the system; appliers use it as
	// "now" so a replay decides the same way.
	IssuedAt time.Time `json:"issuedAt"`
	// Key is the partition key (see org.PartitionKey).
	Key string `json:"key"`
}

// ClientCommandID is the command id of a handset mutation.
func ClientCommandID(clientID string, mutationID int64) string {
	return clientID + ":" + strconv.FormatInt(mutationID, 10)
}

// Outcome is the final result of a command.
type Outcome struct {
	ID         string      `json:"id"` // command id
	MutationID int64       `json:"mutationId,omitempty"`
	Status     string      `json:"status"` // applied | rejected
	Error      *ErrorBody  `json:"error,omitempty"`
	Changes    []ChangeRef `json:"changes,omitempty"`
	At         time.Time   `json:"at"`
}

// Outcome statuses.
const (
	Applied  = "applied"
	Rejected = "rejected"
)

// ErrorBody is the client-facing part of a rejection.
type ErrorBody struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// ChangeRef names a record a command changed.
type ChangeRef struct {
	Collection string `json:"collection"`
	ID         string `json:"id"`
	Op         string `json:"op"`
	Version    int64  `json:"version"`
}

// Change is one change-feed record, as handsets receive it in a pull.
type Change struct {
	Collection string          `json:"collection"`
	Op         string          `json:"op"` // put | del
	ID         string          `json:"id"`
	Version    int64           `json:"version"`
	Doc        json.RawMessage `json:"doc,omitempty"`
}

// Event is a domain event on the EVT stream.
type Event struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Command string          `json:"command"`
	Actor   org.Actor       `json:"actor"`
	At      time.Time       `json:"at"`
	Data    json.RawMessage `json:"data"`
}

// Names derives every stream, subject and bucket name from one prefix, so tests can
// run side by side on one NATS server.
type Names struct {
	Prefix     string
	Partitions int
}

// Stream names.
func (n Names) CmdStream() string { return n.Prefix + "_CMD" }
func (n Names) EvtStream() string { return n.Prefix + "_EVT" }
func (n Names) ChgStream() string { return n.Prefix + "_CHG" }
func (n Names) ResStream() string { return n.Prefix + "_RES" }
func (n Names) JrnStream() string { return n.Prefix + "_JRN" }
func (n Names) TmrStream() string { return n.Prefix + "_TMR" }

// SchedSubject holds the schedule of the timer name (one message per timer).
func (n Names) SchedSubject(name string) string { return n.Prefix + ".sched." + name }

// TimerSubject is where the timer name fires.
func (n Names) TimerSubject(name string) string { return n.Prefix + ".timer." + name }

// JrnSubject is where partition p's applier commits its journals.
func (n Names) JrnSubject(p int) string { return n.Prefix + ".jrn." + strconv.Itoa(p) }

// ClientsBucket is the KV bucket of per-handset queue state.
func (n Names) ClientsBucket() string { return n.Prefix + "_clients" }

// RoutesBucket is the KV bucket of client-made record ids and their partitions.
func (n Names) RoutesBucket() string { return n.Prefix + "_routes" }

// DevicesBucket is the KV bucket of device registrations for pushes.
func (n Names) DevicesBucket() string { return n.Prefix + "_devices" }

// AttachRefsBucket is the KV bucket of attachment references.
func (n Names) AttachRefsBucket() string { return n.Prefix + "_attachrefs" }

// SessionsBucket is the KV bucket of login sessions.
func (n Names) SessionsBucket() string { return n.Prefix + "_sessions" }

// AuditStream is the append-only access log of personal data read in clear.
func (n Names) AuditStream() string { return n.Prefix + "_AUDIT" }

// AuditSubject is where a read of a record at path by user is logged.
func (n Names) AuditSubject(path, user string) string {
	return n.Prefix + ".audit." + path + "." + user
}

// PrefsBucket is the KV bucket of users' notification preferences.
func (n Names) PrefsBucket() string { return n.Prefix + "_prefs" }

// LoginsBucket is the KV bucket of failed logins and lock-outs.
func (n Names) LoginsBucket() string { return n.Prefix + "_logins" }

// ConfigBucket is the KV bucket of what admins change at run time (rules, calendar).
func (n Names) ConfigBucket() string { return n.Prefix + "_config" }

// Partition returns the partition of a key.
func (n Names) Partition(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n.Partitions))
}

// CmdSubject is where a command with this partition key is published.
func (n Names) CmdSubject(key string) string {
	return fmt.Sprintf("%s.cmd.%d.%s", n.Prefix, n.Partition(key), key)
}

// CmdFilter matches every command of one partition.
func (n Names) CmdFilter(partition int) string {
	return fmt.Sprintf("%s.cmd.%d.>", n.Prefix, partition)
}

// ChgSubject is the change-feed subject of one record: scope path, collection, id.
func (n Names) ChgSubject(path, coll, id string) string {
	return n.Prefix + ".chg." + path + "." + coll + "." + id
}

// ChgFilter matches the change feed of a subtree filter (see org.SubtreeFilter).
func (n Names) ChgFilter(pathFilter string) string {
	return n.Prefix + ".chg." + pathFilter + ".>"
}

// EvtSubject is the subject of an event of a type ("incident.reported") at a path.
func (n Names) EvtSubject(typ, path string) string {
	return n.Prefix + ".evt." + typ + "." + path
}

// ResSubject is where the outcome of a command is kept.
func (n Names) ResSubject(commandID string) string {
	client, mid, ok := strings.Cut(commandID, ":")
	if !ok {
		// Server and admin commands ("sys-<uuid>") have no handset queue.
		return n.Prefix + ".res._sys." + commandID
	}
	return n.Prefix + ".res." + client + "." + mid
}

// ValidToken reports whether s can be one NATS subject token (client ids, record ids).
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
