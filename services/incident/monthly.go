package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The monthly refusal report (否定报备) is filed on the 1st: a JetStream message
// schedule fires at 00:00 Asia/Shanghai, the Filer consumer freezes every refusal of
// the month that ended into the reports collection — which only it writes — tells
// the discipline officers (event report.refusalsFiled) and schedules the next month.
// GET /v1/reports/refusals serves a filed month from that record.

// ReportColl holds the filed monthly reports.
const ReportColl = "reports"

const refusalTimer = "report.refusals"

// filedReport is a month's refusals as filed: every unit's, so any unit's report is
// cut from it.
type filedReport struct {
	ID       string        `bson:"_id"` // refusals-YYYY-MM
	Month    string        `bson:"month"`
	FiledAt  time.Time     `bson:"filedAt"`
	Refusals []filedRefuse `bson:"refusals"`
}

type filedRefuse struct {
	Unit string      `bson:"unit"`
	Item RefusalItem `bson:"item"`
}

// monthTimer is what the schedule carries: the month whose report is due.
type monthTimer struct {
	Month string `json:"month"`
}

// firstOfNextMonth is 00:00 Asia/Shanghai of the 1st after t, and the month t is in.
func firstOfNextMonth(t time.Time) (time.Time, string) {
	y, m, _ := t.In(workday.Location()).Date()
	start := time.Date(y, m, 1, 0, 0, 0, 0, workday.Location())
	return start.AddDate(0, 1, 0), start.Format("2006-01")
}

// ScheduleRefusalReport sets the filing of month's report (YYYY-MM) at at. Each month
// has its schedule, so a filing that is late never loses to the next month's; setting
// the same month and time again changes nothing.
func ScheduleRefusalReport(ctx context.Context, js jetstream.JetStream, names command.Names, month string, at time.Time) error {
	return command.ScheduleTimer(ctx, js, names, refusalTimer+"."+month, refusalTimer, at, monthTimer{Month: month})
}

// Filer files the monthly refusal reports.
type Filer struct {
	JS    jetstream.JetStream
	DB    *mongo.Database
	Names command.Names
	Svc   *Service
	Log   *slog.Logger
	Now   func() time.Time
}

// Run makes sure this month's report is scheduled and files reports as their
// schedules fire, until ctx ends; it returns once the consumer is set up.
func (f *Filer) Run(ctx context.Context) error {
	if f.Now == nil {
		f.Now = time.Now
	}
	at, month := firstOfNextMonth(f.Now())
	if err := ScheduleRefusalReport(ctx, f.JS, f.Names, month, at); err != nil {
		return err
	}
	stream, err := f.JS.Stream(ctx, f.Names.TmrStream())
	if err != nil {
		return fmt.Errorf("refusal reports: %w", err)
	}
	return command.Work(ctx, stream, "reports", []string{f.Names.TimerSubject(refusalTimer)}, f.Log, f.handle)
}

func (f *Filer) handle(ctx context.Context, data []byte) error {
	var t monthTimer
	start, err := time.ParseInLocation("2006-01", "", workday.Location())
	if json.Unmarshal(data, &t) == nil {
		start, err = time.ParseInLocation("2006-01", t.Month, workday.Location())
	}
	if err != nil {
		f.Log.Error("refusal reports: undecodable timer dropped", "data", string(data))
		return nil
	}
	// The schedule runs on the broker's clock: a month is filed once it is over on
	// ours too (a minute of skew allowed). A schedule set by a clock that was wrong is
	// dropped; the next start schedules the month again.
	if end := start.AddDate(0, 1, 0); end.Sub(f.Now()) > time.Minute {
		f.Log.Warn("refusal reports: the month is not over; not filed", "month", t.Month, "now", f.Now())
		return nil
	}
	if err := f.File(ctx, t.Month); err != nil {
		return err
	}
	next := start.AddDate(0, 1, 0)
	at, month := firstOfNextMonth(next)
	return ScheduleRefusalReport(ctx, f.JS, f.Names, month, at)
}

// File freezes month's refusals (YYYY-MM) and tells the discipline officers. Filing a
// month again keeps the first filing.
func (f *Filer) File(ctx context.Context, month string) error {
	coll := f.DB.Collection(ReportColl)
	id := "refusals-" + month
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fault.Wrap(err, "read filed report")
	}
	if n == 0 {
		r, err := f.Svc.refusals(ctx, month, "", f.Now())
		if err != nil {
			return err
		}
		doc := filedReport{ID: id, Month: month, FiledAt: f.Now().UTC().Truncate(time.Millisecond), Refusals: []filedRefuse{}}
		for _, u := range r.ByUnit {
			for _, it := range u.Items {
				doc.Refusals = append(doc.Refusals, filedRefuse{Unit: u.Unit, Item: it})
			}
		}
		if _, err := coll.InsertOne(ctx, doc); err != nil && !mongo.IsDuplicateKeyError(err) {
			return fault.Wrap(err, "file refusal report")
		}
		f.Log.Info("refusal report filed", "month", month, "refusals", len(doc.Refusals))
	}
	data, _ := json.Marshal(map[string]any{"month": month, "dueBy": dueBy(month)})
	ev, _ := json.Marshal(command.Event{ID: id, Type: "report.refusalsFiled", Actor: org.SystemActor("reports"),
		At: f.Now().UTC(), Data: data})
	_, err = f.JS.Publish(ctx, f.Names.EvtSubject("report.refusalsFiled", "_._._._._"), ev, jetstream.WithMsgID("evt:"+id))
	return err
}

func dueBy(month string) string {
	t, _ := time.ParseInLocation("2006-01", month, workday.Location())
	return t.AddDate(0, 1, 0).Format("2006-01") + "-10"
}

// filed returns the filed report of month, or nil.
func (s *Service) filed(ctx context.Context, month string) (*filedReport, error) {
	var d filedReport
	err := s.store.db.Collection(ReportColl).FindOne(ctx, bson.D{{Key: "_id", Value: "refusals-" + month}}, options.FindOne()).Decode(&d)
	if err == mongo.ErrNoDocuments {
		return nil, nil
	}
	if err != nil {
		return nil, fault.Wrap(err, "read filed report")
	}
	return &d, nil
}
