package command

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions sizes the streams.
type StreamOptions struct {
	// Horizon is how long tombstones and outcomes are kept (≥ 30 days).
	Horizon time.Duration
	// Dedup is JetStream's duplicate window for commands and published records.
	Dedup time.Duration
	// Replicas for clustered JetStream (1 when embedded).
	Replicas int
	// SessionTTL bounds how long a session key lives (the refresh token lifetime).
	SessionTTL time.Duration
}

// EnsureStreams creates or updates every stream and bucket the write path uses.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, n Names, o StreamOptions) error {
	if o.Dedup == 0 {
		o.Dedup = 10 * time.Minute
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	streams := []jetstream.StreamConfig{{
		Name:        n.CmdStream(),
		Description: "commands, one subject per partition and key; drained by the appliers",
		Subjects:    []string{n.Prefix + ".cmd.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Duplicates:  o.Dedup,
	}, {
		Name:        n.EvtStream(),
		Description: "domain events by type and unit path",
		Subjects:    []string{n.Prefix + ".evt.>"},
		MaxAge:      o.Horizon,
		Duplicates:  o.Dedup,
	}, {
		Name:              n.ChgStream(),
		Description:       "change feed: the latest version of every record by scope path; read by sync pulls",
		Subjects:          []string{n.Prefix + ".chg.>"},
		MaxMsgsPerSubject: 1,
		AllowMsgTTL:       true,
		AllowDirect:       true,
		Duplicates:        o.Dedup,
	}, {
		Name:        n.JrnStream(),
		Description: "write-ahead journal: each applier's committed batches, the newest per partition",
		Subjects:    []string{n.Prefix + ".jrn.>"},
		// Every journal not yet folded into the saved checkpoint must stay: the applier
		// saves it every checkpointEvery batches, well inside this limit.
		MaxMsgsPerSubject: JournalKeep,
		AllowDirect:       true,
		Duplicates:        o.Dedup,
	}, {
		Name:        n.TmrStream(),
		Description: "timers: one JetStream message schedule per timer, and the timers as they fire",
		Subjects:    []string{n.Prefix + ".sched.>", n.Prefix + ".timer.>"},
		// One message per subject: a new schedule replaces the timer's old one, a plain
		// message cancels it, and only a timer's last firing is kept.
		MaxMsgsPerSubject: 1,
		AllowMsgSchedules: true,
		AllowMsgTTL:       true,
		Duplicates:        o.Dedup,
	}, {
		Name:              n.ResStream(),
		Description:       "outcome of every command, kept for the tombstone horizon",
		Subjects:          []string{n.Prefix + ".res.>"},
		MaxMsgsPerSubject: 1,
		MaxAge:            o.Horizon,
		AllowDirect:       true,
		Duplicates:        o.Dedup,
	}, {
		Name:        n.AuditStream(),
		Description: "access log: every read of personal data in clear (append-only: no delete, no purge)",
		Subjects:    []string{n.Prefix + ".audit.>"},
		DenyDelete:  true,
		DenyPurge:   true,
	}}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Replicas = o.Replicas
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	kvs := []jetstream.KeyValueConfig{{
		Bucket:      n.ClientsBucket(),
		Description: "per-handset queue state: highest accepted and highest finished mutation id",
		// No TTL: a handset back after months must still find where its queue stands.
	}, {
		Bucket:      n.RoutesBucket(),
		Description: "which partition owns each record whose id a handset made",
	}, {
		Bucket:      n.DevicesBucket(),
		Description: "device registrations for pushes (token, platform, app version, locale)",
	}, {
		Bucket:      n.AttachRefsBucket(),
		Description: "which records (and so which scopes) reference each attachment",
	}, {
		Bucket:      n.PrefsBucket(),
		Description: "users' notification preferences (quiet hours)",
	}, {
		Bucket:      n.ConfigBucket(),
		Description: "what admins change at run time: incident rules, calendar years",
		History:     10,
	}, {
		Bucket:      n.SessionsBucket(),
		Description: "login sessions with their current refresh token",
		TTL:         o.SessionTTL,
		History:     1,
	}, {
		Bucket:      n.LoginsBucket(),
		Description: "failed logins per account and per address, and lock-outs (auth.Throttle)",
		TTL:         24 * time.Hour, // a day after the last failure nothing is kept
		History:     1,
	}}
	for _, kc := range kvs {
		kc.Storage = jetstream.FileStorage
		kc.Replicas = o.Replicas
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}
