package fieldsync

import (
	"context"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go"
)

// Pokes delivers a signal whenever something changes in the caller's scope, at most
// once per interval (bursts are coalesced), until ctx ends. Online clients hold it
// open as server-sent events and pull when poked, instead of polling.
func (s *Service) Pokes(ctx context.Context, a org.Actor, interval time.Duration) (<-chan struct{}, error) {
	unitAt, err := s.unitsOf(ctx, a)
	if err != nil {
		return nil, err
	}
	a.UnitID = unitAt(time.Now())
	_, filters := scopes(a)
	if len(filters) == 0 {
		return nil, fault.New(fault.Forbidden, "no_scope", "the caller has no scope to watch")
	}
	changed := make(chan struct{}, 1)
	var subs []*nats.Subscription
	for _, f := range filters {
		sub, err := s.nc.Subscribe(s.names.ChgFilter(f), func(*nats.Msg) {
			select {
			case changed <- struct{}{}:
			default: // a poke is already waiting
			}
		})
		if err != nil {
			for _, x := range subs {
				_ = x.Unsubscribe()
			}
			return nil, fault.Wrap(err, "watch scope")
		}
		subs = append(subs, sub)
	}
	out := make(chan struct{})
	go func() {
		defer close(out)
		defer func() {
			for _, x := range subs {
				_ = x.Unsubscribe()
			}
		}()
		var last time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			if wait := interval - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				// Anything that arrived while waiting is covered by this poke.
				select {
				case <-changed:
				default:
				}
			}
			select {
			case out <- struct{}{}:
				last = time.Now()
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
