package command

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Work runs a durable worker on stream: each message matching filters is handed to
// handle and acked when handle succeeds, else delivered again a second later (so
// handle must be idempotent). Work returns once the consumer runs; it stops with ctx.
func Work(ctx context.Context, stream jetstream.Stream, durable string, filters []string, log *slog.Logger,
	handle func(ctx context.Context, data []byte) error) error {
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        durable,
		FilterSubjects: filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  1000,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", durable, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := handle(ctx, m.Data()); err != nil {
			log.Warn("worker failed; will retry", "worker", durable, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return fmt.Errorf("%s: %w", durable, err)
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
	}()
	return nil
}
