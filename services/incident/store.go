package incident

import (
	"context"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Coll is the incidents collection.
const Coll = "incidents"

// doc is the stored form of an incident.
type doc struct {
	ID           string       `bson:"_id"`
	Key          string       `bson:"key"` // partition key, immutable
	Path         string       `bson:"path"`
	Status       string       `bson:"status"`
	Level        int          `bson:"level"`
	UnitID       string       `bson:"unitId"`
	GridID       string       `bson:"gridId,omitempty"`
	Category     string       `bson:"category"`
	Description  string       `bson:"description"`
	Lat          float64      `bson:"lat"`
	Lng          float64      `bson:"lng"`
	Address      string       `bson:"address,omitempty"`
	Photos       []string     `bson:"photos"`
	Urgent       bool         `bson:"urgent"`
	Special      bool         `bson:"special"`
	Source       string       `bson:"source"`
	ReqName      string       `bson:"reqName,omitempty"`
	ReqPhone     string       `bson:"reqPhone,omitempty"`
	ReporterID   string       `bson:"reporterId"`
	FirstOwnerID string       `bson:"firstOwnerId,omitempty"`
	AssigneeID   string       `bson:"assigneeId,omitempty"`
	DueAt        *time.Time   `bson:"dueAt,omitempty"`
	AcceptBy     *time.Time   `bson:"acceptBy,omitempty"`
	Overdue      bool         `bson:"overdue"`
	CreatedAt    time.Time    `bson:"createdAt"`
	UpdatedAt    time.Time    `bson:"updatedAt"`
	ClosedAt     *time.Time   `bson:"closedAt,omitempty"`
	Version      int64        `bson:"version"`
	History      []historyDoc `bson:"history"`

	Result           string        `bson:"result,omitempty"`
	ResultPhotos     []string      `bson:"resultPhotos,omitempty"`
	ResolvedAt       *time.Time    `bson:"resolvedAt,omitempty"`
	Refusal          *Refusal      `bson:"refusal,omitempty"`
	PendingDelay     *DelayRequest `bson:"pendingDelay,omitempty"`
	Delays           []Delay       `bson:"delays,omitempty"`
	DuplicateOf      string        `bson:"duplicateOf,omitempty"`
	LikelyDup        []string      `bson:"likelyDuplicateOf,omitempty"`
	Rating           *Rating       `bson:"rating,omitempty"`
	Comments         []Comment     `bson:"comments,omitempty"`
	Reopens          int           `bson:"reopens,omitempty"`
	ReopenedByRating bool          `bson:"reopenedByRating,omitempty"`
	Escalations      int           `bson:"escalations,omitempty"`
}

type historyDoc struct {
	At     time.Time `bson:"at"`
	By     string    `bson:"by"`
	Device string    `bson:"device,omitempty"`
	Action string    `bson:"action"`
	From   string    `bson:"from,omitempty"`
	To     string    `bson:"to,omitempty"`
	Reason string    `bson:"reason,omitempty"`
	Unit   string    `bson:"unit,omitempty"`
}

func toDoc(i *Incident, key, path string) doc {
	d := doc{
		ID: i.ID, Key: key, Path: path, Status: string(i.Status), Level: i.Level, UnitID: i.UnitID,
		GridID: i.GridID, Category: i.Category, Description: i.Description,
		Lat: i.Location.Lat, Lng: i.Location.Lng, Address: i.Address, Photos: i.Photos,
		Urgent: i.Urgent, Special: i.Special, Source: i.Source, ReporterID: i.ReporterID,
		FirstOwnerID: i.FirstOwnerID, AssigneeID: i.AssigneeID, DueAt: i.DueAt, AcceptBy: i.AcceptBy, Overdue: i.Overdue,
		CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt, ClosedAt: i.ClosedAt, Version: i.Version,
		Result: i.Result, ResultPhotos: i.ResultPhotos, ResolvedAt: i.ResolvedAt, Refusal: i.Refusal,
		PendingDelay: i.PendingDelay, Delays: i.Delays, DuplicateOf: i.DuplicateOf, LikelyDup: i.LikelyDuplicateOf, Rating: i.Rating, Comments: i.Comments,
		Reopens: i.Reopens, ReopenedByRating: i.ReopenedByRating, Escalations: i.Escalations,
	}
	if d.Photos == nil {
		d.Photos = []string{}
	}
	if i.Requester != nil {
		d.ReqName, d.ReqPhone = i.Requester.Name, i.Requester.Phone
	}
	d.History = make([]historyDoc, len(i.History))
	for k, h := range i.History {
		d.History[k] = historyDoc{At: h.At, By: h.By, Device: h.Device, Action: h.Action, From: string(h.From), To: string(h.To), Reason: h.Reason, Unit: h.Unit}
	}
	return d
}

func fromDoc(d doc) *Incident {
	i := &Incident{
		ID: d.ID, Status: Status(d.Status), Level: d.Level, UnitID: d.UnitID, GridID: d.GridID,
		Category: d.Category, Description: d.Description, Location: Point{d.Lat, d.Lng},
		Address: d.Address, Photos: d.Photos, Urgent: d.Urgent, Special: d.Special, Source: d.Source,
		ReporterID: d.ReporterID, FirstOwnerID: d.FirstOwnerID, AssigneeID: d.AssigneeID,
		DueAt: utc(d.DueAt), Overdue: d.Overdue, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
		ClosedAt: utc(d.ClosedAt), Version: d.Version,
		Result: d.Result, ResultPhotos: d.ResultPhotos, ResolvedAt: utc(d.ResolvedAt), Refusal: d.Refusal,
		PendingDelay: d.PendingDelay, Delays: d.Delays, DuplicateOf: d.DuplicateOf, LikelyDuplicateOf: d.LikelyDup, Rating: d.Rating, Comments: d.Comments,
		Reopens: d.Reopens, ReopenedByRating: d.ReopenedByRating, Escalations: d.Escalations,
		key: d.Key, AcceptBy: utc(d.AcceptBy),
	}
	if i.Photos == nil {
		i.Photos = []string{}
	}
	if d.ReqName != "" || d.ReqPhone != "" {
		i.Requester = &Requester{Name: d.ReqName, Phone: d.ReqPhone}
	}
	i.History = make([]HistoryEntry, len(d.History))
	for k, h := range d.History {
		i.History[k] = HistoryEntry{At: h.At.UTC(), By: h.By, Device: h.Device, Action: h.Action, From: Status(h.From), To: Status(h.To), Reason: h.Reason, Unit: h.Unit}
	}
	i.timers = i.deadlines()
	return i
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Store reads incidents from the database outside the write path (single reads go
// to the change feed instead).
type Store struct{ db *mongo.Database }

// NewStore returns a store on db.
func NewStore(db *mongo.Database) *Store { return &Store{db: db} }

// Count returns how many incidents are stored (tests and the demo seed use it).
func (s *Store) Count(ctx context.Context) (int64, error) {
	return s.db.Collection(Coll).CountDocuments(ctx, bson.D{})
}

// find reads the incidents matching filter.
func (s *Store) find(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]doc, error) {
	cur, err := s.db.Collection(Coll).Find(ctx, filter, opts)
	if err != nil {
		return nil, fault.Wrap(err, "read incidents")
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fault.Wrap(err, "read incidents")
	}
	return docs, nil
}

// Each calls fn with every stored incident, in no particular order: a full scan, for
// rebuilding derived figures offline, never on a request path.
func Each(ctx context.Context, db *mongo.Database, fn func(*Incident) error) error {
	cur, err := db.Collection(Coll).Find(ctx, bson.D{}, options.Find().SetBatchSize(2000))
	if err != nil {
		return fault.Wrap(err, "scan incidents")
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d doc
		if err := cur.Decode(&d); err != nil {
			return fault.Wrap(err, "decode incident")
		}
		if err := fn(fromDoc(d)); err != nil {
			return err
		}
	}
	return cur.Err()
}
