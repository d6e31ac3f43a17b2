package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/nats-io/nats.go/jetstream"
)

// Throttle limits password guessing. After AccountLimit failed logins for one account
// within Window, the account is locked for Window — even the right password is
// refused; after AddressLimit failures from one address within Window, that address is
// refused for Window. Counts live in a JetStream key-value bucket, so every gridd
// instance counts the same attempts; updates are compare-and-set.
type Throttle struct {
	KV           jetstream.KeyValue
	AccountLimit int
	AddressLimit int
	Window       time.Duration
}

// attempts is one account's or address's failures.
type attempts struct {
	N      int        `json:"n"`
	Since  time.Time  `json:"since"`
	Locked *time.Time `json:"locked,omitempty"` // refused until
}

func throttleKey(kind, s string) string {
	h := sha256.Sum256([]byte(strings.ToLower(s)))
	return kind + "." + hex.EncodeToString(h[:16])
}

// check refuses an account or address that is locked now.
func (t *Throttle) check(ctx context.Context, now time.Time, login, addr string) error {
	for _, k := range []struct{ key, what string }{{throttleKey("acct", login), "account"}, {throttleKey("addr", addr), "address"}} {
		a, _, err := t.get(ctx, k.key)
		if err != nil {
			return err
		}
		if a.Locked != nil && now.Before(*a.Locked) {
			wait := a.Locked.Sub(now).Round(time.Second)
			return &fault.Error{Kind: fault.TooMany, Code: "too_many_attempts",
				Message: fmt.Sprintf("too many failed logins for this %s; try again in %v", k.what, wait),
				Extra:   map[string]any{"retryAfter": int(wait.Seconds())}}
		}
	}
	return nil
}

func (t *Throttle) get(ctx context.Context, key string) (attempts, uint64, error) {
	var a attempts
	e, err := t.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return a, 0, nil
	}
	if err != nil {
		return a, 0, fault.Wrap(err, "read login attempts")
	}
	if json.Unmarshal(e.Value(), &a) != nil {
		return attempts{}, e.Revision(), nil
	}
	return a, e.Revision(), nil
}

// failed counts a failed login of the account and the address; it reports whether
// either is now locked.
func (t *Throttle) failed(ctx context.Context, now time.Time, login, addr string) (bool, error) {
	locked := false
	for _, k := range []struct {
		key   string
		limit int
	}{{throttleKey("acct", login), t.AccountLimit}, {throttleKey("addr", addr), t.AddressLimit}} {
		for try := 0; ; try++ {
			a, rev, err := t.get(ctx, k.key)
			if err != nil {
				return locked, err
			}
			if a.N == 0 || now.Sub(a.Since) > t.Window || (a.Locked != nil && !now.Before(*a.Locked)) {
				a = attempts{Since: now}
			}
			a.N++
			if a.N >= k.limit {
				until := now.Add(t.Window)
				a.Locked, locked = &until, true
			}
			data, _ := json.Marshal(a)
			if rev == 0 {
				_, err = t.KV.Create(ctx, k.key, data)
			} else {
				_, err = t.KV.Update(ctx, k.key, data, rev)
			}
			if err == nil {
				break
			}
			if try < 5 && (isWrongRevision(err) || errors.Is(err, jetstream.ErrKeyExists)) {
				continue // another instance counted at the same time
			}
			return locked, fault.Wrap(err, "count a failed login")
		}
	}
	return locked, nil
}

// succeeded forgets an account's failures (its address's stay counted).
func (t *Throttle) succeeded(ctx context.Context, login string) {
	_ = t.KV.Delete(ctx, throttleKey("acct", login))
}
