package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/nats-io/nats.go/jetstream"
)

// PusherOptions tune the pusher.
type PusherOptions struct {
	// Batch is the most notifications taken at once; those of one user in a batch
	// are coalesced into one push per device.
	Batch int
	// Wait is how long a fetch waits to fill a batch: the coalescing window.
	Wait time.Duration
	// MaxAttempts bounds the sends of one notification the push service keeps
	// failing (it stays in the inbox).
	MaxAttempts int
	// AckWait is how long a notification taken by a pusher that died is held before
	// another (or the restarted one) sends it.
	AckWait time.Duration
	// Backoff is the first retry delay when the service gives none; it doubles.
	Backoff    time.Duration
	MaxBackoff time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Pusher sends each new notification to its user's devices. It consumes the
// notification.created events durably and acknowledges one only once it is sent (or
// cannot be), so a crash between filing a notification and sending it sends it after
// the restart — at least once; the payload carries the notification id, by which the
// device de-duplicates. Quiet hours hold non-urgent pushes until they end; a burst
// for one user becomes one push per device; 429/5xx answers are retried with backoff,
// after the Retry-After the service gave.
type Pusher struct {
	JS     jetstream.JetStream
	Names  command.Names
	Poker  *Poker // knows the devices with push tokens
	Sender Sender
	Prefs  *Prefs
	opt    PusherOptions
	log    *slog.Logger

	// Sent counts pushes handed to the sender and accepted by it.
	Sent atomic.Int64
}

// NewPusher makes a pusher; Run starts it.
func NewPusher(js jetstream.JetStream, names command.Names, poker *Poker, sender Sender, prefs *Prefs, opt PusherOptions) *Pusher {
	if opt.Batch <= 0 {
		opt.Batch = 200
	}
	if opt.Wait <= 0 {
		opt.Wait = 200 * time.Millisecond
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 10
	}
	if opt.AckWait <= 0 {
		opt.AckWait = 30 * time.Second
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 10 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Pusher{JS: js, Names: names, Poker: poker, Sender: sender, Prefs: prefs, opt: opt, log: opt.Logger}
}

// Run pushes until ctx ends; it returns once the consumer is set up.
func (p *Pusher) Run(ctx context.Context) error {
	stream, err := p.JS.Stream(ctx, p.Names.EvtStream())
	if err != nil {
		return fmt.Errorf("pusher: %w", err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       "pusher",
		FilterSubject: p.Names.EvtSubject(CreatedEvent, ">"),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.opt.AckWait,
		// Pushes held for quiet hours stay pending until they end: room for a night's.
		MaxAckPending: 200000,
	})
	if err != nil {
		return fmt.Errorf("pusher: %w", err)
	}
	go func() {
		for ctx.Err() == nil {
			batch, err := cons.Fetch(p.opt.Batch, jetstream.FetchMaxWait(p.opt.Wait))
			if err != nil {
				if ctx.Err() == nil {
					p.log.Warn("pusher: fetch", "err", err)
					time.Sleep(200 * time.Millisecond)
				}
				continue
			}
			var msgs []jetstream.Msg
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			if len(msgs) > 0 {
				p.deliver(ctx, msgs)
			}
		}
	}()
	return nil
}

type pending struct {
	msg jetstream.Msg
	n   Notification
}

// deliver pushes one batch, user by user.
func (p *Pusher) deliver(ctx context.Context, msgs []jetstream.Msg) {
	var order []string
	byUser := map[string][]pending{}
	for _, m := range msgs {
		var ev command.Event
		var n Notification
		if json.Unmarshal(m.Data(), &ev) != nil || json.Unmarshal(ev.Data, &n) != nil || n.UserID == "" {
			p.log.Error("pusher: undecodable notification dropped")
			_ = m.Term()
			continue
		}
		if byUser[n.UserID] == nil {
			order = append(order, n.UserID)
		}
		byUser[n.UserID] = append(byUser[n.UserID], pending{m, n})
	}
	now := p.opt.Now()
	for _, user := range order {
		group := byUser[user]
		prefs, err := p.Prefs.Get(ctx, user)
		if ctx.Err() != nil {
			return // stopping: unacknowledged, they are sent after the restart
		}
		if err != nil {
			p.retry(group, p.opt.Backoff, err)
			continue
		}
		if until, quiet := prefs.QuietHours.Until(now); quiet {
			var urgent []pending
			for _, x := range group {
				if x.n.Urgent {
					urgent = append(urgent, x)
				} else {
					_ = x.msg.NakWithDelay(until.Sub(now)) // pushed when the quiet hours end
				}
			}
			group = urgent
		}
		if len(group) > 0 {
			p.push(ctx, user, group)
		}
	}
}

// maxIDs bounds the ids one push carries (FCM data payloads are at most 4 KB).
const maxIDs = 50

// push sends a user's notifications to each of the user's devices, coalesced.
func (p *Pusher) push(ctx context.Context, user string, group []pending) {
	devs := p.Poker.devicesOf(user)
	if len(devs) == 0 {
		ack(group) // no device to push to: the inbox has them
		return
	}
	for start := 0; start < len(group); start += maxIDs {
		part := group[start:min(len(group), start+maxIDs)]
		msgs := make([]Message, len(devs))
		for i, d := range devs {
			msgs[i] = Message{DeviceID: d.id, Token: d.token, Data: payload(part, d.locale)}
		}
		results := p.Sender.Send(ctx, msgs)
		if ctx.Err() != nil {
			return // stopping: unacknowledged, they are sent after the restart
		}
		var retryAfter time.Duration
		var failed error
		for i, r := range results {
			switch {
			case r.Err == nil:
				p.Sent.Add(1)
			case r.Unregistered:
				p.Poker.drop(ctx, msgs[i])
			case r.Retryable:
				failed = r.Err
				retryAfter = max(retryAfter, r.RetryAfter)
			default:
				p.log.Warn("push refused by the push service", "device", msgs[i].DeviceID, "err", r.Err)
			}
		}
		if failed != nil {
			p.retry(part, retryAfter, failed)
		} else {
			ack(part)
		}
	}
}

// retry sends the notifications again later: after the service's Retry-After, or with
// exponential backoff; after MaxAttempts they are given up (they stay in the inbox).
func (p *Pusher) retry(group []pending, after time.Duration, cause error) {
	for _, x := range group {
		md, err := x.msg.Metadata()
		attempt := 1
		if err == nil {
			attempt = int(md.NumDelivered)
		}
		if attempt >= p.opt.MaxAttempts {
			p.log.Error("push given up after retries; the notification stays in the inbox", "notification", x.n.ID, "user", x.n.UserID, "err", cause)
			_ = x.msg.Ack()
			continue
		}
		delay := after
		if delay <= 0 {
			delay = min(p.opt.Backoff<<min(attempt-1, 20), p.opt.MaxBackoff)
		}
		p.log.Warn("push failed; retrying", "notification", x.n.ID, "attempt", attempt, "in", delay, "err", cause)
		_ = x.msg.NakWithDelay(delay)
	}
}

func ack(group []pending) {
	for _, x := range group {
		_ = x.msg.Ack()
	}
}

// payload is the data push of one or more notifications, in the device's language.
// It always carries the ids; the app de-duplicates by them and pulls its inbox.
func payload(group []pending, locale string) map[string]string {
	last := group[len(group)-1].n
	if len(group) == 1 {
		d := map[string]string{"type": "notification", "id": last.ID, "kind": last.Kind,
			"title": clipText(last.Title.In(locale), 100), "body": clipText(last.Body.In(locale), 300)}
		if last.IncidentID != "" {
			d["incidentId"] = last.IncidentID
		}
		if last.Urgent {
			d["urgent"] = "true"
		}
		return d
	}
	ids := make([]string, len(group))
	urgent := false
	for i, x := range group {
		ids[i] = x.n.ID
		urgent = urgent || x.n.Urgent
	}
	d := map[string]string{"type": "notification", "ids": strings.Join(ids, ","), "count": strconv.Itoa(len(group)),
		"title": Text{Zh: fmt.Sprintf("您有%d条新通知", len(group)), En: fmt.Sprintf("%d new notifications", len(group))}.In(locale),
		"body":  last.Title.In(locale)}
	if urgent {
		d["urgent"] = "true"
	}
	return d
}

// clipText keeps a push within FCM's 4 KB data limit (at most n characters); the
// inbox holds the whole text.
func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
