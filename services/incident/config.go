package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/nats-io/nats.go/jetstream"
)

// Rules are the categories and the capability matrix as one document: an admin
// changes them together, so they never disagree (the matrix has a row per
// sub-category and its lowest level is the category's default level).
type Rules struct {
	Categories   json.RawMessage `json:"categories"`
	Capabilities json.RawMessage `json:"capabilities"`
}

// Config is what admins change at run time without a release — the rules, the
// calendar years and other documents (visit plans, point rates) — kept in a JetStream key-value bucket that every gridd watches, so
// a change reaches every instance's writers. What ships in schemas/ is the default
// until an admin replaces it.
type Config struct {
	kv  jetstream.KeyValue
	svc *Service
	log *slog.Logger

	mu       sync.Mutex
	rules    Rules             // in force
	defaults *workday.Calendar // the shipped years
	years    map[int]workday.Year
	docs     map[string]*Doc
	revs     map[string]uint64 // the revision applied last, per key
}

// Doc is another document admins change at run time (visit plans, point rates): Parse
// checks it and, when apply is set, puts it in force; Current is the document in force.
type Doc struct {
	Parse   func(data []byte, apply bool) error
	Current []byte
}

// Keys of the config bucket.
const (
	keyRules    = "rules"
	keyCalendar = "calendar." // + year
)

// NewConfig returns the run-time configuration of svc, whose shipped rules are def
// and shipped calendar cal.
func NewConfig(kv jetstream.KeyValue, svc *Service, def Rules, cal *workday.Calendar, log *slog.Logger) *Config {
	return &Config{kv: kv, svc: svc, log: log, rules: def, defaults: cal, years: map[int]workday.Year{}, docs: map[string]*Doc{}, revs: map[string]uint64{}}
}

// Register adds a document under key, with what ships as its default (already in
// force); call it before Watch.
func (c *Config) Register(key string, shipped []byte, parse func(data []byte, apply bool) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.docs[key] = &Doc{Parse: parse, Current: shipped}
}

// Doc returns the document in force under key (nil if unknown).
func (c *Config) Doc(key string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.docs[key]; d != nil {
		return d.Current
	}
	return nil
}

// PutDoc checks and stores a document; every gridd puts it in force.
func (c *Config) PutDoc(ctx context.Context, key string, data []byte) error {
	c.mu.Lock()
	d := c.docs[key]
	c.mu.Unlock()
	if d == nil {
		return fault.New(fault.NotFound, "not_found", "no such configuration document")
	}
	if !json.Valid(data) {
		return fault.New(fault.Invalid, "invalid_json", "the body is not valid JSON")
	}
	if err := d.Parse(data, false); err != nil {
		return fault.New(fault.Unprocessable, "invalid_config", err.Error())
	}
	rev, err := c.kv.Put(ctx, "doc."+key, data)
	if err != nil {
		return fault.Wrap(err, "store "+key)
	}
	return c.applyAt("doc."+key, data, rev)
}

// Rules returns the rules in force.
func (c *Config) Rules() Rules {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rules
}

// Watch applies the stored configuration and then every change to it until ctx ends;
// it returns once the stored configuration is applied.
func (c *Config) Watch(ctx context.Context) error {
	w, err := c.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		defer w.Stop()
		initial := true
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil { // the stored values are all delivered
					if initial {
						initial = false
						close(ready)
					}
					continue
				}
				if e.Operation() != jetstream.KeyValuePut {
					continue
				}
				if err := c.applyAt(e.Key(), e.Value(), e.Revision()); err != nil {
					// Values are checked before they are stored; one that fails here was
					// written by something else. The rules in force stay.
					c.log.Error("config: stored value not applied", "key", e.Key(), "err", err)
				}
			}
		}
	}()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applyAt applies a value stored at revision rev, unless a later one of the key was
// applied already (a local apply and the watch may deliver them in either order).
func (c *Config) applyAt(key string, value []byte, rev uint64) error {
	c.mu.Lock()
	if rev <= c.revs[key] {
		c.mu.Unlock()
		return nil
	}
	c.revs[key] = rev
	c.mu.Unlock()
	return c.apply(key, value)
}

func (c *Config) apply(key string, value []byte) error {
	switch {
	case key == keyRules:
		var r Rules
		if err := json.Unmarshal(value, &r); err != nil {
			return err
		}
		cat, m, err := ParseRules(r)
		if err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if cur := c.svc.Catalog(); cur != nil && cat.Version < cur.Version {
			return nil // an older value delivered late
		}
		c.rules = r
		c.svc.catalog.Store(cat)
		c.svc.matrix.Store(m)
		return nil
	case strings.HasPrefix(key, "doc."):
		c.mu.Lock()
		d := c.docs[strings.TrimPrefix(key, "doc.")]
		c.mu.Unlock()
		if d == nil {
			return nil
		}
		if err := d.Parse(value, true); err != nil {
			return err
		}
		c.mu.Lock()
		d.Current = value
		c.mu.Unlock()
		return nil
	case strings.HasPrefix(key, keyCalendar):
		y, err := workday.Parse(value)
		if err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.years[y.Year] = y
		cal := c.defaults
		for _, yr := range slices.Sorted(maps.Keys(c.years)) {
			if cal, err = cal.With(c.years[yr]); err != nil {
				return err
			}
		}
		c.svc.calendar.Store(cal)
		return nil
	}
	return nil
}

// ParseRules reads and checks the rules.
func ParseRules(r Rules) (*Catalog, *Matrix, error) {
	cat, err := ParseCatalog(r.Categories)
	if err != nil {
		return nil, nil, err
	}
	m, err := ParseMatrix(r.Capabilities, cat)
	if err != nil {
		return nil, nil, err
	}
	return cat, m, nil
}

// storedVersion reads the categories' version from stored rules.
func storedVersion(stored []byte) (int, error) {
	var r struct {
		Categories struct {
			Version int `json:"version"`
		} `json:"categories"`
	}
	err := json.Unmarshal(stored, &r)
	return r.Categories.Version, err
}

// PutRules checks and stores new rules: both documents valid and consistent, the
// categories' version above the one in force (handsets refresh on a new version), and
// no category code dropped (items already filed under it must keep their rules).
func (c *Config) PutRules(ctx context.Context, r Rules) (*Catalog, error) {
	if len(r.Categories) == 0 || len(r.Capabilities) == 0 {
		return nil, fault.New(fault.Invalid, "invalid_rules", "both categories and capabilities are required")
	}
	cat, _, err := ParseRules(r)
	if err != nil {
		return nil, fault.New(fault.Unprocessable, "invalid_rules", err.Error())
	}
	cur := c.svc.Catalog()
	if cat.Version <= cur.Version {
		return nil, fault.New(fault.Conflict, "stale_version",
			fmt.Sprintf("categories version %d: the rules in force are version %d; raise it", cat.Version, cur.Version))
	}
	var dropped []string
	for _, code := range cur.Codes() {
		if _, ok := cat.Find(code); !ok {
			dropped = append(dropped, code)
		}
	}
	if len(dropped) > 0 {
		return nil, fault.New(fault.Unprocessable, "invalid_rules",
			"categories cannot be removed, items may be filed under them: "+strings.Join(dropped, ", "))
	}
	data, _ := json.Marshal(r)
	// Written only over the value these checks saw: of two admins racing, one wins and
	// the other is told to look again.
	var err2 error
	var rev uint64
	if e, err := c.kv.Get(ctx, keyRules); errors.Is(err, jetstream.ErrKeyNotFound) {
		rev, err2 = c.kv.Create(ctx, keyRules, data)
	} else if err != nil {
		return nil, fault.Wrap(err, "read rules")
	} else if old, perr := storedVersion(e.Value()); perr != nil || old >= cat.Version {
		return nil, fault.New(fault.Conflict, "stale_version", "the rules changed meanwhile; read them again")
	} else {
		rev, err2 = c.kv.Update(ctx, keyRules, data, e.Revision())
	}
	if err2 != nil {
		if errors.Is(err2, jetstream.ErrKeyExists) || strings.Contains(err2.Error(), "wrong last sequence") {
			return nil, fault.New(fault.Conflict, "stale_version", "the rules changed meanwhile; read them again")
		}
		return nil, fault.Wrap(err2, "store rules")
	}
	// Applied here too, so the caller reads its change at once; the watch applies it
	// on the other instances (and again here, harmlessly).
	if err := c.applyAt(keyRules, data, rev); err != nil {
		return nil, err
	}
	return cat, nil
}

// PutYear checks and stores a calendar year (the format of schemas/calendar/*.json,
// from the State Council notice); it adds a year or replaces a shipped one.
func (c *Config) PutYear(ctx context.Context, year int, data []byte) (workday.Year, error) {
	y, err := workday.Parse(data)
	if err != nil {
		return y, fault.New(fault.Unprocessable, "invalid_calendar", err.Error())
	}
	if y.Year != year {
		return y, fault.New(fault.Invalid, "invalid_calendar", "the file is for "+strconv.Itoa(y.Year)+", not "+strconv.Itoa(year))
	}
	if _, err := c.defaults.With(y); err != nil {
		return y, fault.New(fault.Unprocessable, "invalid_calendar", err.Error())
	}
	rev, err := c.kv.Put(ctx, keyCalendar+strconv.Itoa(year), data)
	if err != nil {
		return y, fault.Wrap(err, "store calendar")
	}
	if err := c.applyAt(keyCalendar+strconv.Itoa(year), data, rev); err != nil {
		return y, err
	}
	return y, nil
}

// StoredYears lists the calendar years an admin loaded (the others are shipped).
func (c *Config) StoredYears() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.years))
}
