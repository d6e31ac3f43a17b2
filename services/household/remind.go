package household

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
)

// OverdueEvent is announced every working morning for each grid with visits overdue;
// the notifier tells the grid's workers.
const OverdueEvent = "visit.overdue"

const reminderTimer = "visits.remind"

// ReminderHour is when, Asia/Shanghai, overdue visits are announced.
const ReminderHour = 8

// Overdue is the data of visit.overdue.
type Overdue struct {
	Day          string   `json:"day"` // YYYY-MM-DD
	GridID       string   `json:"gridId"`
	Count        int      `json:"count"`
	HouseholdIDs []string `json:"householdIds"` // the first 50, most overdue first
}

type reminderData struct {
	Day string `json:"day"`
}

// nextReminder is the next ReminderHour o'clock after t, and its day.
func nextReminder(t time.Time) (time.Time, string) {
	loc := workday.Location()
	y, m, d := t.In(loc).Date()
	at := time.Date(y, m, d, ReminderHour, 0, 0, 0, loc)
	if !at.After(t) {
		at = at.AddDate(0, 0, 1)
	}
	return at, at.Format("2006-01-02")
}

// ScheduleReminder sets the announcement of day's overdue visits at at; each day has
// its own schedule, and setting the same day and time again changes nothing.
func ScheduleReminder(ctx context.Context, js jetstream.JetStream, names command.Names, day string, at time.Time) error {
	return command.ScheduleTimer(ctx, js, names, reminderTimer+"."+day, reminderTimer, at, reminderData{Day: day})
}

// RunReminders schedules the next morning's announcement and announces as the
// schedules fire, until ctx ends; it returns once the consumer is set up.
func (s *Service) RunReminders(ctx context.Context, now func() time.Time, log *slog.Logger) error {
	if now == nil {
		now = time.Now
	}
	at, day := nextReminder(now())
	if err := ScheduleReminder(ctx, s.JS, s.Names, day, at); err != nil {
		return err
	}
	stream, err := s.JS.Stream(ctx, s.Names.TmrStream())
	if err != nil {
		return fmt.Errorf("visit reminders: %w", err)
	}
	return command.Work(ctx, stream, "visits", []string{s.Names.TimerSubject(reminderTimer)}, log, func(ctx context.Context, data []byte) error {
		var r reminderData
		_ = json.Unmarshal(data, &r)
		day, err := time.ParseInLocation("2006-01-02", r.Day, workday.Location())
		if err != nil {
			log.Error("visit reminders: undecodable timer dropped", "data", string(data))
			return nil
		}
		at := day.Add(ReminderHour * time.Hour)
		if at.Sub(now()) > time.Minute {
			// Fired by a clock that was wrong: dropped; the next start schedules again.
			log.Warn("visit reminders: not yet time; dropped", "day", r.Day, "now", now())
			return nil
		}
		if ok, err := s.Calendar().IsWorkday(day); err == nil && ok {
			if err := s.Announce(ctx, r.Day, now()); err != nil {
				return err
			}
		}
		next, nextDay := nextReminder(at)
		return ScheduleReminder(ctx, s.JS, s.Names, nextDay, next)
	})
}

// Announce publishes visit.overdue for every grid with overdue visits at now; an
// announcement of the same day and grid is published once.
func (s *Service) Announce(ctx context.Context, day string, now time.Time) error {
	due, err := s.dueVisits(ctx, "", now, true)
	if err != nil {
		return err
	}
	byGrid := map[string]*Overdue{}
	var grids []string
	for _, d := range due {
		o := byGrid[d.GridID]
		if o == nil {
			o = &Overdue{Day: day, GridID: d.GridID, HouseholdIDs: []string{}}
			byGrid[d.GridID] = o
			grids = append(grids, d.GridID)
		}
		o.Count++
		if len(o.HouseholdIDs) < 50 {
			o.HouseholdIDs = append(o.HouseholdIDs, d.HouseholdID)
		}
	}
	for _, g := range grids {
		data, _ := json.Marshal(byGrid[g])
		id := "visits-" + day + "-" + g
		ev, _ := json.Marshal(command.Event{ID: id, Type: OverdueEvent, Actor: org.SystemActor("visits"), At: now.UTC(), Data: data})
		if _, err := s.JS.Publish(ctx, s.Names.EvtSubject(OverdueEvent, org.PathSubject(g)), ev, jetstream.WithMsgID("evt:"+id)); err != nil {
			return fmt.Errorf("announce overdue visits: %w", err)
		}
	}
	return nil
}
