// Package complaint owns complaints about staff (投诉): filed from a handset or the
// web, they go to the discipline officer and stay confidential — never on the change
// feed, readable only by the discipline role of the unit or above — and are due the
// same or the next working day, complex ones (several departments) within 5 working
// days.
package complaint

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/attachment"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Coll is the complaints collection; CmdFile the mutation that files one and
// CmdAnswer the one that answers it.
const (
	Coll      = "complaints"
	CmdFile   = "complaint.file"
	CmdAnswer = "complaint.answer"
)

// Statuses of a complaint.
const (
	Open     = "open"
	Answered = "answered"
)

// Person is the complainant (personal data).
type Person struct {
	Name  string `json:"name" bson:"name"`
	Phone string `json:"phone,omitempty" bson:"phone,omitempty"`
}

// Args are the arguments of complaint.file.
type Args struct {
	ComplaintID string   `json:"complaintId"`
	Text        string   `json:"text"`
	AboutUserID string   `json:"aboutUserId"`
	AboutUnitID string   `json:"aboutUnitId"`
	IncidentID  string   `json:"incidentId"`
	Complainant *Person  `json:"complainant"`
	Photos      []string `json:"photos"`
	// Complex marks a complaint that involves several departments (5 working days).
	Complex bool `json:"complex"`
}

// Complaint is the stored record.
type Complaint struct {
	ID          string    `json:"id" bson:"_id"`
	Key         string    `json:"-" bson:"_k,omitempty"`
	Text        string    `json:"text" bson:"text"`
	AboutUserID string    `json:"aboutUserId,omitempty" bson:"aboutUserId,omitempty"`
	AboutUnitID string    `json:"aboutUnitId,omitempty" bson:"aboutUnitId,omitempty"`
	IncidentID  string    `json:"incidentId,omitempty" bson:"incidentId,omitempty"`
	Complainant *Person   `json:"complainant,omitempty" bson:"complainant,omitempty"`
	Photos      []string  `json:"photos" bson:"photos"`
	Complex     bool      `json:"complex" bson:"complex"`
	FiledBy     string    `json:"filedBy" bson:"filedBy"`
	Unit        string    `json:"unit" bson:"unit"` // the filer's unit: whose discipline officers see it
	FiledAt     time.Time `json:"filedAt" bson:"filedAt"`
	DueAt       time.Time `json:"dueAt" bson:"dueAt"`
	Status      string    `json:"status" bson:"status"` // open, answered
	Version     int64     `json:"version" bson:"version"`
	// Overdue is computed on reading: still open after its due time.
	Overdue bool `json:"overdue" bson:"-"`
	// The answer, once given: what the complainant was told, by whom and when, and
	// whether it came after the due time.
	Answer     string     `json:"answer,omitempty" bson:"answer,omitempty"`
	AnsweredBy string     `json:"answeredBy,omitempty" bson:"answeredBy,omitempty"`
	AnsweredAt *time.Time `json:"answeredAt,omitempty" bson:"answeredAt,omitempty"`
	Late       bool       `json:"late,omitempty" bson:"late,omitempty"`
}

// AnswerArgs are the arguments of complaint.answer.
type AnswerArgs struct {
	ComplaintID string `json:"complaintId"`
	Answer      string `json:"answer"`
}

// Service files and lists complaints.
type Service struct {
	DB       *mongo.Database
	Calendar func() *workday.Calendar
	// Now is the clock the list's overdue flag reads (time.Now when nil).
	Now func() time.Time
}

// Register adds complaint.file to the write path.
func (s *Service) Register(r *command.Registry) {
	r.Own(Coll)
	r.Register(CmdFile, command.Handler{Apply: s.apply, Keys: command.ArgKey(Coll, "complaintId")})
	r.Register(CmdAnswer, command.Handler{Apply: s.answer, Keys: command.ArgKey(Coll, "complaintId")})
}

// Router sends a complaint's mutations to its writer: complaint.file claims the
// complaint id for the filer's partition, complaint.answer goes to that partition
// whoever answers.
type Router struct {
	DB     *mongo.Database
	Routes *command.Routes
}

// Route returns the partition key of a complaint mutation.
func (rt Router) Route(ctx context.Context, a org.Actor, name string, args json.RawMessage) (string, error) {
	fallback := org.PartitionKey(a.UnitID)
	var x struct {
		ComplaintID string `json:"complaintId"`
	}
	if json.Unmarshal(args, &x) != nil || !command.ValidToken(x.ComplaintID) {
		return fallback, nil
	}
	if name == CmdFile {
		return rt.Routes.Claim(ctx, Coll, x.ComplaintID, fallback)
	}
	// A complaint filed before ids were claimed: the stored record knows its writer.
	key, err := rt.Routes.Writer(ctx, rt.DB, Coll, x.ComplaintID)
	if err != nil || key != "" {
		return key, err
	}
	return fallback, nil // unknown complaint: its writer answers not_found
}

// answer records the discipline officer's answer to an open complaint; an answer
// after the due time is flagged late.
func (s *Service) answer(tx *command.Tx, c *command.Command) error {
	var a AnswerArgs
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match complaint.answer")
	}
	f := fault.Fields{}
	if u, err := uuid.Parse(a.ComplaintID); err != nil || u.String() != a.ComplaintID {
		f.Add("complaintId", "the complaint's id")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Answer)); n == 0 || n > 4000 || !utf8.ValidString(a.Answer) {
		f.Add("answer", "1 to 4000 characters")
	}
	if err := f.Err("invalid_args", "the mutation's arguments are invalid"); err != nil {
		return err
	}
	if !c.Actor.Has(org.RoleDiscipline) {
		return fault.New(fault.Forbidden, "forbidden", "complaints are answered by the discipline officer only")
	}
	var cp Complaint
	found, err := tx.Get(Coll, a.ComplaintID, &cp)
	if err != nil {
		return err
	}
	if !found || !c.Actor.Sees(cp.Unit) {
		return fault.New(fault.NotFound, "not_found", "no such complaint")
	}
	if cp.Status != Open {
		return fault.New(fault.Conflict, "invalid_transition", "the complaint is already "+cp.Status)
	}
	now := tx.Now()
	cp.Status, cp.Answer, cp.AnsweredBy, cp.AnsweredAt = Answered, strings.TrimSpace(a.Answer), c.Actor.UserID, &now
	cp.Late = now.After(cp.DueAt)
	cp.Version++
	if err := tx.Put(command.Record{Coll: Coll, ID: cp.ID, Version: cp.Version, Doc: cp, Private: true}); err != nil {
		return err
	}
	// The filer hears that it was answered (not the answer: that goes to the complainant).
	return tx.Emit("complaint.answered", org.UserPath(cp.FiledBy), map[string]any{"id": cp.ID, "unit": cp.Unit, "late": cp.Late})
}

func (a *Args) validate() error {
	f := fault.Fields{}
	if u, err := uuid.Parse(a.ComplaintID); err != nil || u.String() != a.ComplaintID {
		f.Add("complaintId", "a UUID made on the device")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Text)); n == 0 || n > 4000 || !utf8.ValidString(a.Text) {
		f.Add("text", "1 to 4000 characters")
	}
	if a.AboutUserID != "" && (len(a.AboutUserID) > 64 || strings.ContainsAny(a.AboutUserID, "$.{} ")) {
		f.Add("aboutUserId", "a login")
	}
	if a.AboutUnitID != "" && !org.ValidCode(a.AboutUnitID) {
		f.Add("aboutUnitId", "a unit code")
	}
	if a.IncidentID != "" {
		if _, err := uuid.Parse(a.IncidentID); err != nil {
			f.Add("incidentId", "an incident id")
		}
	}
	if p := a.Complainant; p != nil {
		if n := utf8.RuneCountInString(p.Name); n == 0 || n > 100 {
			f.Add("complainant.name", "1 to 100 characters")
		}
		if p.Phone != "" && !org.ValidMobile(p.Phone) {
			f.Add("complainant.phone", org.MobileProblem)
		}
	}
	attachment.CheckPhotos(f, "photos", a.Photos)
	return f.Err("invalid_args", "the mutation's arguments are invalid")
}

func (s *Service) apply(tx *command.Tx, c *command.Command) error {
	var a Args
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return fault.New(fault.Invalid, "invalid_args", "arguments do not match complaint.file")
	}
	if err := a.validate(); err != nil {
		return err
	}
	if !c.Actor.System && !org.ValidCode(c.Actor.UnitID) {
		return fault.New(fault.Forbidden, "forbidden", "the caller has no valid home unit")
	}
	var existing Complaint
	if found, err := tx.Get(Coll, a.ComplaintID, &existing); err != nil {
		return err
	} else if found {
		return fault.New(fault.Conflict, "already_exists", "a complaint with this id exists")
	}
	now := tx.Now()
	n := 1 // answered the same or the next working day
	if a.Complex {
		n = 5
	}
	due, err := s.Calendar().Due(now, n)
	if errors.Is(err, workday.ErrOutOfRange) || err != nil {
		due = now.Add(time.Duration(n) * 24 * time.Hour)
	}
	cp := Complaint{ID: a.ComplaintID, Text: strings.TrimSpace(a.Text), AboutUserID: strings.ToLower(a.AboutUserID),
		AboutUnitID: a.AboutUnitID, IncidentID: a.IncidentID, Complainant: a.Complainant, Photos: a.Photos,
		Complex: a.Complex, FiledBy: c.Actor.UserID, Unit: c.Actor.UnitID, FiledAt: now,
		DueAt: due.UTC().Truncate(time.Millisecond), Status: Open, Version: 1}
	if cp.Photos == nil {
		cp.Photos = []string{}
	}
	// Private: never on the change feed, so no handset ever syncs it.
	if err := tx.Put(command.Record{Coll: Coll, ID: cp.ID, Version: 1, Doc: cp, Private: true}); err != nil {
		return err
	}
	// The event tells the discipline officers a complaint arrived, without its content.
	return tx.Emit("complaint.filed", org.PathSubject(cp.Unit), map[string]any{"id": cp.ID, "unit": cp.Unit, "dueAt": cp.DueAt, "complex": cp.Complex})
}

// List returns the complaints filed in the caller's subtree, newest first; only the
// discipline role reads them.
func (s *Service) List(ctx context.Context, a org.Actor) ([]Complaint, error) {
	if !a.Has(org.RoleDiscipline) {
		return nil, fault.New(fault.Forbidden, "forbidden", "complaints are read by the discipline officer only")
	}
	if !org.ValidCode(a.UnitID) {
		return nil, fault.New(fault.Forbidden, "forbidden", "the caller has no valid home unit")
	}
	// Unit codes are digits only: the prefix needs no escaping.
	cur, err := s.DB.Collection(Coll).Find(ctx, bson.D{{Key: "unit", Value: bson.D{{Key: "$regex", Value: org.SubtreeRegex(a.UnitID)}}}},
		options.Find().SetSort(bson.D{{Key: "filedAt", Value: -1}}).SetLimit(1000))
	if err != nil {
		return nil, fault.Wrap(err, "read complaints")
	}
	out := []Complaint{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fault.Wrap(err, "read complaints")
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	for i := range out {
		cp := &out[i]
		cp.FiledAt, cp.DueAt = cp.FiledAt.UTC(), cp.DueAt.UTC()
		if cp.AnsweredAt != nil {
			at := cp.AnsweredAt.UTC()
			cp.AnsweredAt = &at
		}
		cp.Overdue = cp.Status == Open && now.After(cp.DueAt)
	}
	return out, nil
}
