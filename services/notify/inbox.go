package notify

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Every notification is first a record in its recipient's inbox, written by the single
// writer like any record and synced to the user's phones on the user's own path — so a
// lost push never loses the message. The push is then sent from the event the write
// publishes (notification.created), which is the outbox: it stays in JetStream until
// the pusher has sent it.

// Coll is the inbox collection; CmdDeliver the command that files a notification.
const (
	Coll       = "notifications"
	CmdDeliver = "notify.deliver"
	// CreatedEvent is published for each new notification; the pusher sends it.
	CreatedEvent = "notification.created"
)

// Text is a message in the two languages the product ships.
type Text struct {
	Zh string `json:"zh" bson:"zh"`
	En string `json:"en" bson:"en"`
}

// In returns the text for a locale (zh-CN unless it asks for English).
func (t Text) In(locale string) string {
	if len(locale) >= 2 && locale[:2] == "en" && t.En != "" {
		return t.En
	}
	return t.Zh
}

// Notification is one message to one user.
type Notification struct {
	ID     string `json:"id" bson:"_id"`
	UserID string `json:"userId" bson:"userId"`
	// Kind names the rule that made it (assigned, escalated, dueSoon, …).
	Kind   string `json:"kind" bson:"kind"`
	Urgent bool   `json:"urgent" bson:"urgent"`
	Title  Text   `json:"title" bson:"title"`
	Body   Text   `json:"body" bson:"body"`
	// What it is about.
	IncidentID  string    `json:"incidentId,omitempty" bson:"incidentId,omitempty"`
	ComplaintID string    `json:"complaintId,omitempty" bson:"complaintId,omitempty"`
	Event       string    `json:"event" bson:"event"` // the domain event's id
	At          time.Time `json:"at" bson:"at"`       // when the domain event happened
	Version     int64     `json:"version" bson:"version"`
}

// Register adds notify.deliver to the write path.
func Register(r *command.Registry) {
	r.Own(Coll)
	r.Register(CmdDeliver, command.Handler{Apply: applyDeliver, Keys: command.ArgKey(Coll, "id")})
}

// applyDeliver files a notification in its recipient's inbox, once, and publishes it
// for the pusher. System only: the notifier decides who is told what.
func applyDeliver(tx *command.Tx, c *command.Command) error {
	if !c.Actor.System {
		return fault.New(fault.Forbidden, "forbidden", "notifications are made by the notifier")
	}
	var n Notification
	if err := json.Unmarshal(c.Args, &n); err != nil || n.ID == "" || n.UserID == "" {
		return fault.New(fault.Invalid, "invalid_args", "a notification with an id and a recipient")
	}
	var old Notification
	if found, err := tx.Get(Coll, n.ID, &old); err != nil {
		return err
	} else if found {
		return nil // delivered before: an event handled twice tells no one twice
	}
	n.Version = 1
	path := org.UserPath(n.UserID)
	if err := tx.Put(command.Record{Coll: Coll, ID: n.ID, Version: 1, Path: path, Doc: n, Wire: n}); err != nil {
		return err
	}
	return tx.Emit(CreatedEvent, path, n)
}

// Inbox reads a user's notifications.
type Inbox struct{ DB *mongo.Database }

// List returns the caller's notifications, newest first; before (a time, RFC 3339)
// and beforeID (the id of the last one of the previous page) page back.
func (in Inbox) List(ctx context.Context, a org.Actor, before, beforeID string, limit int) ([]Notification, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	filter := bson.D{{Key: "userId", Value: a.UserID}}
	if before != "" {
		t, err := time.Parse(time.RFC3339Nano, before)
		if err != nil {
			return nil, fault.New(fault.Invalid, "invalid_request", "before: an RFC 3339 time")
		}
		older := bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: t}}}}
		if beforeID != "" {
			// Notifications of one push share their time: page on (at, id).
			filter = append(filter, bson.E{Key: "$or", Value: bson.A{older,
				bson.D{{Key: "at", Value: t}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: beforeID}}}}}})
		} else {
			filter = append(filter, older...)
		}
	}
	cur, err := in.DB.Collection(Coll).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fault.Wrap(err, "read notifications")
	}
	out := []Notification{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fault.Wrap(err, "read notifications")
	}
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, nil
}

// key is the partition of a user's notifications: all of a user's inbox has one
// writer.
func key(login string) string { return "inbox:" + login }

// idOf is a notification's id: the same event told to the same user under the same
// rule always makes the same id, so a redelivered event is filed once.
func idOf(eventID, login, kind string) string {
	return uuid.NewSHA1(idSpace, []byte(eventID+"|"+login+"|"+kind)).String()
}

var idSpace = uuid.MustParse("6f1c2a9e-4b7d-4e55-9a8e-0d3c5b7a9e21")
