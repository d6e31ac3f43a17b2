// Package notify delivers pushes to handsets. This part sends the sync poke of the
// sync protocol: a coalesced data push {"type":"sync"} to every registered device
// whose scope changed, so devices pull on a poke instead of polling. Senders are
// Firebase Cloud Messaging (with credentials) or a local outbox (without).
package notify

import (
	"context"
	"log/slog"
	"time"
)

// Message is one data push to one device.
type Message struct {
	DeviceID string
	Token    string
	Data     map[string]string
}

// Result is what became of one Message. Unregistered means the token is dead (the app
// was uninstalled or the token rotated) and must not be used again.
type Result struct {
	Err          error
	Unregistered bool
	// Retryable says the push service is overloaded or failing (429, 5xx, network):
	// try again later, after RetryAfter when it said so.
	Retryable  bool
	RetryAfter time.Duration
}

// Sender delivers messages; the results are in the order of msgs.
type Sender interface {
	Send(ctx context.Context, msgs []Message) []Result
}

// Local is the sender without FCM credentials (the embedded default and the demo): it
// writes every message to the log, so the loop can be seen working.
type Local struct {
	Log *slog.Logger
}

// Send logs msgs; it never fails.
func (l Local) Send(_ context.Context, msgs []Message) []Result {
	for _, m := range msgs {
		l.Log.Info("push (local outbox: no FCM credentials)", "device", m.DeviceID, "data", m.Data)
	}
	return make([]Result, len(msgs))
}
