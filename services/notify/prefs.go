package notify

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/nats-io/nats.go/jetstream"
)

// Preferences are a user's notification settings.
type Preferences struct {
	// QuietHours, Asia/Shanghai: no pushes then except for urgent items; what comes in
	// meanwhile is pushed when they end (and is in the inbox at once).
	QuietHours *QuietHours `json:"quietHours"`
}

// QuietHours is a daily window "HH:MM"–"HH:MM"; start after end spans midnight.
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

var hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

func minutes(s string) int {
	return int(s[0]-'0')*600 + int(s[1]-'0')*60 + int(s[3]-'0')*10 + int(s[4]-'0')
}

// Until returns when the quiet hours around t end, and whether t is inside them.
func (q *QuietHours) Until(t time.Time) (time.Time, bool) {
	if q == nil || q.Start == q.End {
		return t, false
	}
	local := t.In(workday.Location())
	m := local.Hour()*60 + local.Minute()
	start, end := minutes(q.Start), minutes(q.End)
	in := (start < end && m >= start && m < end) || (start > end && (m >= start || m < end))
	if !in {
		return t, false
	}
	y, mo, d := local.Date()
	until := time.Date(y, mo, d, end/60, end%60, 0, 0, workday.Location())
	if !until.After(local) {
		until = until.AddDate(0, 0, 1)
	}
	return until, true
}

// Prefs keeps preferences in a key-value bucket, one key per user (a user writes only
// their own).
type Prefs struct{ kv jetstream.KeyValue }

// NewPrefs returns the store on the bucket.
func NewPrefs(kv jetstream.KeyValue) *Prefs { return &Prefs{kv: kv} }

// Get returns a user's preferences (the defaults when none are stored).
func (p *Prefs) Get(ctx context.Context, login string) (Preferences, error) {
	var out Preferences
	e, err := p.kv.Get(ctx, login)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return out, nil
	}
	if err != nil {
		return out, fault.Wrap(err, "read preferences")
	}
	_ = json.Unmarshal(e.Value(), &out)
	return out, nil
}

// Put checks and stores a user's preferences.
func (p *Prefs) Put(ctx context.Context, login string, pr Preferences) error {
	if q := pr.QuietHours; q != nil && (!hhmm.MatchString(q.Start) || !hhmm.MatchString(q.End)) {
		return fault.New(fault.Invalid, "invalid_request", "quietHours: start and end as HH:MM (Asia/Shanghai), or null")
	}
	data, _ := json.Marshal(pr)
	if _, err := p.kv.Put(ctx, login, data); err != nil {
		return fault.Wrap(err, "store preferences")
	}
	return nil
}
