package mobileapi

import (
	"bufio"
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Heartbeat is how often an idle event stream sends a comment, so proxies and
// handsets notice a dead connection.
const heartbeat = 25 * time.Second

// streamLife bounds one event stream below the server's write timeout; the client
// reconnects (after the `retry` it was told) and is poked at once on reconnect, so
// nothing that changed in between goes unnoticed.
const streamLife = 50 * time.Second

// events holds GET /v1/sync/events open as server-sent events: `event: sync` whenever
// the caller's scope changed (coalesced), a comment line as heartbeat.
func (s *server) events(c *fiber.Ctx) error {
	a := actorOf(c)
	ctx, cancel := context.WithCancel(context.Background())
	pokes, err := s.Sync.Pokes(ctx, a, s.opt.PokeInterval)
	if err != nil {
		cancel()
		return err
	}
	const poke = "event: sync\ndata: {\"type\":\"sync\"}\n\n"
	msgs := make(chan string)
	go func() {
		defer close(msgs)
		for range pokes {
			select {
			case msgs <- poke:
			case <-ctx.Done():
				return
			}
		}
	}()
	// A poke on connect: whatever changed while the client was away is pulled now.
	s.holdStream(c, cancel, poke, msgs)
	return nil
}

// holdStream answers with a server-sent event stream: the retry hint and hello, then
// each message of msgs as it comes, a comment line as heartbeat when idle, until msgs
// closes, the stream's life ends or the server stops; cancel is called at the end.
func (s *server) holdStream(c *fiber.Ctx, cancel context.CancelFunc, hello string, msgs <-chan string) {
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	// The writer runs after the handler returns: it uses nothing of c.
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		life := time.NewTimer(streamLife)
		defer life.Stop()
		if _, err := w.WriteString("retry: 2000\n: connected\n\n" + hello); err != nil || w.Flush() != nil {
			return
		}
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					return
				}
				if _, err := w.WriteString(m); err != nil {
					return
				}
			case <-tick.C:
				if _, err := w.WriteString(": keep-alive\n\n"); err != nil {
					return
				}
			case <-life.C:
				return
			case <-s.done:
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
		}
	})
}
