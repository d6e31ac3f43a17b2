package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/ferret"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Durable is the projector's consumer on the change feed.
const Durable = "stats"

// ChangedSubject is where the projector announces, after each batch, the units whose
// figures changed (core NATS: every gridd's dashboard streams listen).
func ChangedSubject(n command.Names) string { return n.Prefix + ".stats.changed" }

// Projector keeps the counters: the single writer of Coll, ItemColl and JournalColl.
// It reads the change feed's incidents — each message the incident as it is now — and
// for each newer version takes the item's old contribution out of the counters and
// puts the new one in, so the counters always equal the sum over the items as they
// are now (what Rebuild computes from the stored incidents).
//
// Crash safety: a batch's results (whole documents, not increments) are written first
// as one journal document, then to their collections, then each of its changes is
// acknowledged. At start the last journal is written again; the redelivered changes are
// then no newer than the items already counted and are skipped. Acknowledgements are
// per change, not cumulative: changes delivered to a projector that died before
// counting them come again after AckWait, whatever the next projector acknowledged
// meanwhile (with cumulative acks its first batch would acknowledge them unseen —
// found by gridlab chaos).
type Projector struct {
	JS       jetstream.JetStream
	NC       *nats.Conn
	DB       *mongo.Database
	Names    command.Names
	Calendar func() *workday.Calendar
	Log      *slog.Logger
	// Batch is the most changes projected in one write (default 500).
	Batch int
	// AckWait is how long a batch may take before it is delivered again (default 30s;
	// a redelivered change is skipped as counted).
	AckWait time.Duration
	// Hook, when set, is called at each stage of a batch ("fetched", "journaled") —
	// crash tests.
	Hook func(stage string)

	mu        sync.Mutex // one batch or rebuild at a time
	cache     map[string]*counterDoc
	items     map[string]*Item
	projected atomic.Int64
	cons      jetstream.Consumer
	journal   string // the last journal written, deleted once the next one is
}

// Projected is the number of changes counted since start.
func (p *Projector) Projected() int64 { return p.projected.Load() }

type itemDoc struct {
	ID   string `bson:"_id"`
	Item Item   `bson:"item"`
}

// journalDoc is the projector's last batch (or a rebuild under way).
type journalDoc struct {
	ID       string       `bson:"_id"`
	Seq      uint64       `bson:"seq"`
	Rebuild  bool         `bson:"rebuild,omitempty"`
	Counters []counterDoc `bson:"counters,omitempty"`
	Items    []itemDoc    `bson:"items,omitempty"`
	Gone     []string     `bson:"gone,omitempty"`
	// Fresh names the counters and items not stored before this batch: inserted (far
	// faster than upserts on FerretDB), except when a journal is written again.
	Fresh []string `bson:"fresh,omitempty"`
}

// rebuildMark is the journal document that says a rebuild is under way.
const rebuildMark = "rebuild"

// journalName names a batch's journal: ordered by stream sequence, then by time (a
// retried batch writes another).
func journalName(seq uint64) string { return fmt.Sprintf("b%020d%020d", seq, time.Now().UnixNano()) }

const (
	cacheDocs  = 50_000
	cacheItems = 200_000
)

// Run recovers from the last journal and starts projecting; it returns once the
// consumer runs and stops with ctx.
func (p *Projector) Run(ctx context.Context) error {
	if p.Batch <= 0 {
		p.Batch = 500
	}
	if p.AckWait <= 0 {
		p.AckWait = 30 * time.Second
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	p.reset()
	stream, err := p.JS.Stream(ctx, p.Names.ChgStream())
	if err != nil {
		return fmt.Errorf("stats projector: %w", err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       Durable,
		FilterSubject: p.Names.ChgSubject("*.*.*.*.*", incident.Coll, "*"),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.AckWait,
		MaxAckPending: 100_000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if err := p.upgradeConsumer(ctx, stream, &cfg); err != nil {
		return fmt.Errorf("stats projector: %w", err)
	}
	if p.cons, err = stream.CreateOrUpdateConsumer(ctx, cfg); err != nil {
		return fmt.Errorf("stats projector: %w", err)
	}
	go func() {
		// The last batch's journal is written again before anything else is counted;
		// a slow or failing database delays the figures, never gridd's start.
		for ctx.Err() == nil {
			p.mu.Lock()
			err := p.recover(ctx)
			p.mu.Unlock()
			if err == nil {
				break
			}
			p.Log.Error("stats: journal not written again; retrying", "err", err)
			sleep(ctx, time.Second)
		}
		p.loop(ctx)
	}()
	return nil
}

// upgradeConsumer replaces a consumer made by an earlier gridd with cumulative acks
// (an ack policy cannot be changed in place) by one that starts after the last change
// it acknowledged; redelivered changes are skipped as counted. An existing consumer
// keeps where it started.
func (p *Projector) upgradeConsumer(ctx context.Context, stream jetstream.Stream, cfg *jetstream.ConsumerConfig) error {
	c, err := stream.Consumer(ctx, Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	info := c.CachedInfo()
	if info.Config.AckPolicy == cfg.AckPolicy {
		cfg.DeliverPolicy, cfg.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
		return nil
	}
	if err := stream.DeleteConsumer(ctx, Durable); err != nil {
		return err
	}
	cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
	p.Log.Info("stats: consumer replaced (per-change acks)", "from", cfg.OptStartSeq)
	return nil
}

func (p *Projector) reset() {
	p.cache = map[string]*counterDoc{}
	p.items = map[string]*Item{}
}

// recover writes the last journal again, or redoes an interrupted rebuild.
func (p *Projector) recover(ctx context.Context) error {
	jc := p.DB.Collection(JournalColl)
	cur, err := jc.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return err
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return err
	}
	last := ""
	for _, x := range ids {
		if x.ID == rebuildMark {
			p.Log.Warn("stats: a rebuild was interrupted; rebuilding again")
			_, err := p.rebuild(ctx)
			return err
		}
		last = max(last, x.ID)
	}
	if last == "" {
		return nil
	}
	var j journalDoc
	if err := jc.FindOne(ctx, bson.D{{Key: "_id", Value: last}}).Decode(&j); err != nil {
		return err
	}
	if err := p.write(ctx, &j, true); err != nil {
		return err
	}
	for _, x := range ids {
		if x.ID != last {
			if _, err := jc.DeleteOne(ctx, bson.D{{Key: "_id", Value: x.ID}}); err != nil {
				return err
			}
		}
	}
	p.journal = last
	return nil
}

func (p *Projector) loop(ctx context.Context) {
	for ctx.Err() == nil {
		batch, err := p.cons.Fetch(p.Batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				p.Log.Warn("stats: fetch", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			continue
		}
		if p.Hook != nil {
			p.Hook("fetched")
		}
		for len(msgs) > 0 && ctx.Err() == nil {
			n, units, err := p.project(ctx, msgs)
			if err != nil {
				p.Log.Error("stats: batch not projected; retrying", "err", err)
				sleep(ctx, time.Second)
				// Part of the batch may be stored: its journal, written again, makes
				// the counters whole before the changes are counted once more.
				p.mu.Lock()
				if err := p.recover(ctx); err != nil {
					p.Log.Error("stats: journal not written again", "err", err)
				}
				p.mu.Unlock()
				continue
			}
			for _, m := range msgs[:n] {
				if err := m.Ack(); err != nil {
					p.Log.Warn("stats: ack", "err", err)
					break // the rest come again and are skipped as counted
				}
			}
			p.announce(units)
			msgs = msgs[n:]
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// announce tells the dashboards which units' figures changed.
func (p *Projector) announce(units []string) {
	if p.NC == nil || len(units) == 0 {
		return
	}
	data, _ := json.Marshal(units)
	_ = p.NC.Publish(ChangedSubject(p.Names), data)
}

// batch is the documents and items one batch changes; fresh ones are not stored yet.
type batch struct {
	ctx        context.Context
	p          *Projector
	docs       map[string]*counterDoc
	items      map[string]*Item // nil: deleted
	fresh      map[string]bool  // counter documents not stored yet
	freshItems map[string]bool
	err        error
}

// A batch ends at whichever limit comes first, so its journal stays small: a year of
// history arriving at once (a first start, an import) touches hundreds of days.
const (
	batchDocs  = 1000
	batchItems = 1000
)

func (b *batch) get(id string) *counterDoc {
	if d, ok := b.docs[id]; ok {
		return d
	}
	d := &counterDoc{ID: id}
	if c, ok := b.p.cache[id]; ok {
		d = c.clone()
	} else if b.err == nil {
		err := b.p.DB.Collection(Coll).FindOne(b.ctx, bson.D{{Key: "_id", Value: id}}).Decode(d)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			b.fresh[id] = true
		case err != nil:
			b.err = err
		}
	}
	b.docs[id] = d
	return d
}

func (b *batch) item(id string) *Item {
	if it, ok := b.items[id]; ok {
		return it
	}
	if it, ok := b.p.items[id]; ok {
		return it
	}
	if b.err != nil {
		return nil
	}
	var d itemDoc
	err := b.p.DB.Collection(ItemColl).FindOne(b.ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		b.freshItems[id] = true
		return nil
	}
	if err != nil {
		b.err = err
		return nil
	}
	return &d.Item
}

func (d *counterDoc) clone() *counterDoc {
	c := *d
	c.Cats = slices.Clone(d.Cats)
	c.Days = slices.Clone(d.Days)
	c.Months = slices.Clone(d.Months)
	c.Overdue = slices.Clone(d.Overdue)
	return &c
}

// project counts changes from the start of msgs and writes the result; it returns how
// many it took (at least one) and the units whose figures changed.
func (p *Projector) project(ctx context.Context, msgs []jetstream.Msg) (int, []string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := &batch{ctx: ctx, p: p, docs: map[string]*counterDoc{}, items: map[string]*Item{},
		fresh: map[string]bool{}, freshItems: map[string]bool{}}
	cal := p.Calendar()
	var seq uint64
	taken := 0
	for _, m := range msgs {
		if taken > 0 && (len(b.docs) >= batchDocs || len(b.items) >= batchItems) {
			break
		}
		taken++
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		var ch command.Change
		if err := json.Unmarshal(m.Data(), &ch); err != nil || ch.Collection != incident.Coll {
			p.Log.Error("stats: change not understood; skipped", "subject", m.Subject(), "err", err)
			continue
		}
		p.change(b, cal, ch)
	}
	if b.err != nil {
		p.reset()
		return 0, nil, b.err
	}
	if err := p.commit(ctx, b, seq); err != nil {
		p.reset()
		return 0, nil, err
	}
	p.projected.Add(int64(taken))
	units := map[string]bool{}
	for id := range b.docs {
		u, _, _ := strings.Cut(id, "/")
		units[u] = true
	}
	out := make([]string, 0, len(units))
	for u := range units {
		out = append(out, u)
	}
	slices.Sort(out)
	return taken, out, nil
}

// change counts one change of an incident.
func (p *Projector) change(b *batch, cal *workday.Calendar, ch command.Change) {
	old := b.item(ch.ID)
	if ch.Op == "del" {
		if old != nil {
			count(b, *old, -1)
			b.items[ch.ID] = nil
		}
		return
	}
	var inc incident.Incident
	if err := json.Unmarshal(ch.Doc, &inc); err != nil {
		p.Log.Error("stats: incident not understood; skipped", "id", ch.ID, "err", err)
		return
	}
	nw := FromIncident(&inc)
	nw.Measure(cal)
	if old != nil && old.Version >= nw.Version {
		return // counted already (a redelivery after a crash)
	}
	if old != nil {
		count(b, *old, -1)
	}
	count(b, nw, 1)
	b.items[ch.ID] = &nw
}

// commit writes a batch: the journal first, then its documents; the caches follow.
func (p *Projector) commit(ctx context.Context, b *batch, seq uint64) error {
	j := journalDoc{ID: journalName(seq), Seq: seq}
	for id, d := range b.docs {
		d.tidy()
		if b.fresh[id] && d.empty() {
			continue // made and emptied in one batch: nothing to store or delete
		}
		j.Counters = append(j.Counters, *d)
		if b.fresh[id] {
			j.Fresh = append(j.Fresh, id)
		}
	}
	for id, it := range b.items {
		switch {
		case it == nil && b.freshItems[id]:
		case it == nil:
			j.Gone = append(j.Gone, id)
		default:
			j.Items = append(j.Items, itemDoc{ID: id, Item: *it})
			if b.freshItems[id] {
				j.Fresh = append(j.Fresh, "item:"+id)
			}
		}
	}
	// A new document each batch: inserting is cheap where replacing a large document
	// is not; the one before goes once this batch is written.
	jc := p.DB.Collection(JournalColl)
	if _, err := jc.InsertOne(ctx, j); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if p.Hook != nil {
		p.Hook("journaled")
	}
	if err := p.write(ctx, &j, false); err != nil {
		return err
	}
	if p.journal != "" {
		if _, err := jc.DeleteOne(ctx, bson.D{{Key: "_id", Value: p.journal}}); err != nil {
			p.Log.Warn("stats: old journal not deleted", "err", err) // recover deletes it
		}
	}
	p.journal = j.ID
	if len(p.cache)+len(b.docs) > cacheDocs {
		p.cache = map[string]*counterDoc{}
	}
	for id, d := range b.docs {
		if d.empty() {
			delete(p.cache, id) // deleted: the next change finds it fresh
		} else {
			p.cache[id] = d
		}
	}
	if len(p.items)+len(b.items) > cacheItems {
		p.items = map[string]*Item{}
	}
	for id, it := range b.items {
		if it == nil {
			delete(p.items, id)
		} else {
			p.items[id] = it
		}
	}
	return nil
}

// write applies a journal: whole documents, so writing it again changes nothing
// (again: every document upserted, since some may be stored already).
func (p *Projector) write(ctx context.Context, j *journalDoc, again bool) error {
	fresh := map[string]bool{}
	if !again {
		for _, id := range j.Fresh {
			fresh[id] = true
		}
	}
	var models []mongo.WriteModel
	var inserts []any
	for _, d := range j.Counters {
		switch {
		case d.empty():
			models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: d.ID}}))
		case fresh[d.ID]:
			inserts = append(inserts, d)
		default:
			models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: d.ID}}).
				SetReplacement(d).SetUpsert(true))
		}
	}
	if err := insert(ctx, p.DB.Collection(Coll), inserts); err != nil {
		return fmt.Errorf("counters: %w", err)
	}
	if err := bulk(ctx, p.DB.Collection(Coll), models); err != nil {
		return fmt.Errorf("counters: %w", err)
	}
	models, inserts = models[:0], inserts[:0]
	for _, it := range j.Items {
		if fresh["item:"+it.ID] {
			inserts = append(inserts, it)
			continue
		}
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: it.ID}}).
			SetReplacement(it).SetUpsert(true))
	}
	if err := insert(ctx, p.DB.Collection(ItemColl), inserts); err != nil {
		return fmt.Errorf("items: %w", err)
	}
	for _, id := range j.Gone {
		models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}))
	}
	if err := bulk(ctx, p.DB.Collection(ItemColl), models); err != nil {
		return fmt.Errorf("items: %w", err)
	}
	return nil
}

// bulk writes replaces and deletes in commands of at most ferret.MaxStatements
// (more deadlock FerretDB on SQLite: see there), unordered.
func bulk(ctx context.Context, c *mongo.Collection, models []mongo.WriteModel) error {
	for _, chunk := range ferret.Chunks(models) {
		if _, err := c.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false)); err != nil {
			return err
		}
	}
	return nil
}

// insert adds new documents in chunks (far faster than upserts on FerretDB).
func insert(ctx context.Context, c *mongo.Collection, docs []any) error {
	for len(docs) > 0 {
		n := min(len(docs), 500)
		if _, err := c.InsertMany(ctx, docs[:n], options.InsertMany().SetOrdered(false)); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

// CaughtUp reports whether every change published so far has been counted.
func (p *Projector) CaughtUp(ctx context.Context) (bool, error) {
	if p.cons == nil {
		return false, errors.New("stats projector not running")
	}
	info, err := p.cons.Info(ctx)
	if err != nil {
		return false, err
	}
	return info.NumPending == 0 && info.NumAckPending == 0, nil
}

// RebuildReport says what a rebuild found and did.
type RebuildReport struct {
	Items     int `json:"items"`     // incidents counted
	Documents int `json:"documents"` // counter documents written
	// Differences is how many counter documents the live counters had otherwise than
	// the rebuild (0 when the projector was right).
	Differences int `json:"differences"`
	// Differed names the first of them (at most 20), to look into.
	Differed []string `json:"differed,omitempty"`
}

// Rebuild recomputes every counter from the stored incidents, replacing the live ones,
// and reports how many documents differed. Changes arriving meanwhile wait; those
// already in the stored incidents are then skipped as counted.
func (p *Projector) Rebuild(ctx context.Context) (*RebuildReport, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rebuild(ctx)
}

type memDocs map[string]*counterDoc

func (m memDocs) get(id string) *counterDoc {
	d, ok := m[id]
	if !ok {
		d = &counterDoc{ID: id}
		m[id] = d
	}
	return d
}

func (p *Projector) rebuild(ctx context.Context) (*RebuildReport, error) {
	p.reset()
	jc := p.DB.Collection(JournalColl)
	if _, err := jc.ReplaceOne(ctx, bson.D{{Key: "_id", Value: rebuildMark}}, journalDoc{ID: rebuildMark, Rebuild: true},
		options.Replace().SetUpsert(true)); err != nil {
		return nil, err
	}
	cal := p.Calendar()
	mem := memDocs{}
	var items []any
	r := &RebuildReport{}
	err := incident.Each(ctx, p.DB, func(inc *incident.Incident) error {
		it := FromIncident(inc)
		it.Measure(cal)
		count(mem, it, 1)
		items = append(items, itemDoc{ID: it.ID, Item: it})
		r.Items++
		return nil
	})
	if err != nil {
		return nil, err
	}
	stored, err := all(ctx, p.DB.Collection(Coll))
	if err != nil {
		return nil, err
	}
	// Compared first, then replaced whole: emptied and filled again (fast on any
	// backend; an interrupted rebuild is run again at start).
	docs := make([]any, 0, len(mem))
	for id, d := range mem {
		d.tidy()
		if d.empty() {
			delete(mem, id)
			continue
		}
		if !same(d, stored[id]) {
			r.differ(p.Log, id, stored[id], d)
		}
		docs = append(docs, d)
	}
	for id, d := range stored {
		if mem[id] == nil {
			r.differ(p.Log, id, d, nil)
		}
	}
	r.Documents = len(mem)
	if _, err := p.DB.Collection(Coll).DeleteMany(ctx, bson.D{}); err != nil {
		return nil, err
	}
	if err := insert(ctx, p.DB.Collection(Coll), docs); err != nil {
		return nil, err
	}
	if _, err := p.DB.Collection(ItemColl).DeleteMany(ctx, bson.D{}); err != nil {
		return nil, err
	}
	if err := insert(ctx, p.DB.Collection(ItemColl), items); err != nil {
		return nil, err
	}
	// Everything is rewritten: no batch journal is needed any more, nor the mark.
	if _, err := jc.DeleteMany(ctx, bson.D{}); err != nil {
		return nil, err
	}
	p.journal = ""
	p.Log.Info("stats rebuilt", "items", r.Items, "documents", r.Documents, "differences", r.Differences)
	return r, nil
}

// differ counts a counter document that was not what the rebuild made, and logs the
// first few whole: a difference is a bug of the projector (or a tampered counter).
func (r *RebuildReport) differ(log *slog.Logger, id string, live, rebuilt *counterDoc) {
	r.Differences++
	if len(r.Differed) < 20 {
		r.Differed = append(r.Differed, id)
	}
	if r.Differences <= 5 {
		log.Warn("stats: a live counter differed from the rebuild", "id", id, "live", live, "rebuilt", rebuilt)
	}
}

// all reads every counter document (the rebuild's comparison; never on a request).
func all(ctx context.Context, c *mongo.Collection) (map[string]*counterDoc, error) {
	cur, err := c.Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var ds []*counterDoc
	if err := cur.All(ctx, &ds); err != nil {
		return nil, err
	}
	out := make(map[string]*counterDoc, len(ds))
	for _, d := range ds {
		out[d.ID] = d
	}
	return out, nil
}

// same compares a computed document with a stored one as stored.
func same(d, stored *counterDoc) bool {
	if stored == nil {
		return false
	}
	raw, err := bson.Marshal(d)
	if err != nil {
		return false
	}
	var back counterDoc
	if bson.Unmarshal(raw, &back) != nil {
		return false
	}
	return reflect.DeepEqual(&back, stored)
}
