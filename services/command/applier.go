package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collections the write path keeps for itself.
const (
	JournalColl    = "journal"     // write-ahead record of each applied batch
	CheckpointColl = "checkpoints" // per partition: last applied stream sequence
	MutationColl   = "mutations"   // outcome of every handset mutation, by command id
)

// ApplierOptions configures one partition's applier.
type ApplierOptions struct {
	Partition int
	Batch     int           // most commands per round trip
	Horizon   time.Duration // tombstone lifetime
	CacheSize int           // records kept in memory (the partition is their only writer)
	// Preload loads every record of the partition into memory at start, so commands
	// never read the database. Right for the embedded FerretDB, whose every query
	// scans; on MongoDB, indexed prefetches are cheaper than holding everything.
	Preload bool
	Logger  *slog.Logger
	// Hooks lets crash tests stop the applier at a chosen point.
	Hooks Hooks
}

// Hooks are called at the points of a batch where a crash matters; a hook that returns
// an error stops the applier there, as a crash would.
type Hooks struct {
	AfterWrite   func(partition int) error // after the database write, before publishing
	AfterPublish func(partition int) error // after publishing, before the journal is dropped and the commands acked
}

// Applier applies one partition's commands. Run it in one goroutine; it is the only
// writer of the records of its partition.
type Applier struct {
	js    jetstream.JetStream
	db    *mongo.Database
	names Names
	reg   *Registry
	opt   ApplierOptions
	log   *slog.Logger

	cache map[string]bson.Raw // nil value: known absent
	// complete: the cache holds every record of the partition (Preload).
	complete bool
	ckpt     checkpoint
	// finished lists journals whose effects are all written and published. They stay
	// until the next cleanup, which first saves the checkpoint and then deletes them;
	// until then the newest journal carries the checkpoint.
	finished []string
	ready    atomic.Bool
	applied  atomic.Int64
}

type checkpoint struct {
	Seq     int64
	Clients map[string]window // mutation ids applied per handset, in this partition
}

type checkpointDoc struct {
	ID      string      `bson:"_id"`
	Seq     int64       `bson:"seq"`
	Clients []clientMax `bson:"clients"`
}

type clientMax struct {
	Client string `bson:"c"`
	Window window `bson:"w"`
}

type journalDoc struct {
	ID        string         `bson:"_id"`
	Partition int            `bson:"partition"`
	FirstSeq  int64          `bson:"firstSeq"`
	LastSeq   int64          `bson:"lastSeq"`
	Writes    []journalWrite `bson:"writes"`
	Outbox    []outMsg       `bson:"outbox"`
	Ckpt      checkpointDoc  `bson:"ckpt"`
	At        time.Time      `bson:"at"`
}

// journalRecord is how a journal is stored: its body as one binary value. The
// database then stores a single opaque field instead of parsing thousands of nested
// fields; the documents inside were checked storable when staged (Tx.Put).
type journalRecord struct {
	ID        string    `bson:"_id"`
	Partition int       `bson:"partition"`
	FirstSeq  int64     `bson:"firstSeq"`
	LastSeq   int64     `bson:"lastSeq"`
	At        time.Time `bson:"at"`
	Body      []byte    `bson:"body"`
}

func (j *journalDoc) record() (*journalRecord, error) {
	body, err := bson.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode journal: %w", err)
	}
	return &journalRecord{ID: j.ID, Partition: j.Partition, FirstSeq: j.FirstSeq, LastSeq: j.LastSeq, At: j.At, Body: body}, nil
}

type journalWrite struct {
	Coll string   `bson:"coll"`
	ID   string   `bson:"id"`
	Doc  bson.Raw `bson:"doc,omitempty"` // absent: delete
	New  bool     `bson:"new,omitempty"` // insert (replace if a replay finds it)
}

type mutationDoc struct {
	ID         string      `bson:"_id"`
	ClientID   string      `bson:"clientId"`
	MutationID int64       `bson:"mutationId"`
	Status     string      `bson:"status"`
	Error      *errorDoc   `bson:"error,omitempty"`
	Changes    []ChangeRef `bson:"changes,omitempty"`
	At         time.Time   `bson:"at"`
}

// errorDoc stores an ErrorBody; field paths ("requester.phone") become values, never
// keys, because stored keys may not contain dots.
type errorDoc struct {
	Code    string     `bson:"code"`
	Message string     `bson:"message"`
	Fields  []fieldDoc `bson:"fields,omitempty"`
}

type fieldDoc struct {
	Field   string `bson:"f"`
	Problem string `bson:"p"`
}

func toErrorDoc(e *ErrorBody) *errorDoc {
	if e == nil {
		return nil
	}
	d := &errorDoc{Code: e.Code, Message: e.Message}
	for f, p := range e.Fields {
		d.Fields = append(d.Fields, fieldDoc{f, p})
	}
	slices.SortFunc(d.Fields, func(x, y fieldDoc) int { return strings.Compare(x.Field, y.Field) })
	return d
}

func (d *errorDoc) body() *ErrorBody {
	if d == nil {
		return nil
	}
	e := &ErrorBody{Code: d.Code, Message: d.Message}
	for _, f := range d.Fields {
		if e.Fields == nil {
			e.Fields = map[string]string{}
		}
		e.Fields[f.Field] = f.Problem
	}
	return e
}

// StoredOutcome reads a command's outcome from the database (the durable copy of what
// the outcome stream keeps for the horizon); nil while the command is not applied.
func StoredOutcome(ctx context.Context, db *mongo.Database, commandID string) (*Outcome, error) {
	var d mutationDoc
	err := db.Collection(MutationColl).FindOne(ctx, bson.D{{Key: "_id", Value: commandID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fault.Wrap(err, "read outcome")
	}
	return &Outcome{ID: d.ID, MutationID: d.MutationID, Status: d.Status, Error: d.Error.body(), Changes: d.Changes, At: d.At}, nil
}

// NewApplier makes the applier of one partition.
func NewApplier(js jetstream.JetStream, db *mongo.Database, names Names, reg *Registry, opt ApplierOptions) *Applier {
	if opt.Batch <= 0 {
		opt.Batch = 256
	}
	if opt.CacheSize <= 0 {
		opt.CacheSize = 200_000
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Applier{
		js: js, db: db, names: names, reg: reg, opt: opt,
		log:   opt.Logger.With("partition", opt.Partition),
		cache: map[string]bson.Raw{},
	}
}

// Ready reports whether the applier has recovered and is consuming.
func (a *Applier) Ready() bool { return a.ready.Load() }

// Applied counts commands applied since start.
func (a *Applier) Applied() int64 { return a.applied.Load() }

func (a *Applier) ckptID() string { return "cmd-" + strconv.Itoa(a.opt.Partition) }

// Run recovers unfinished batches, then applies commands until ctx ends or a hook
// stops it.
func (a *Applier) Run(ctx context.Context) error {
	defer a.ready.Store(false)
	if err := retry(ctx, a.log, "recover", func() error { return a.recover(ctx) }); err != nil {
		return err
	}
	var f *feed
	defer func() {
		if f != nil {
			f.close()
		}
	}()
	reopen := func() error {
		if f != nil {
			f.close()
		}
		return retry(ctx, a.log, "open", func() error {
			var err error
			f, err = a.openFeed(ctx)
			return err
		})
	}
	if err := reopen(); err != nil {
		return err
	}
	a.ready.Store(true)
	idle := time.NewTimer(time.Second)
	defer idle.Stop()
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case <-idle.C:
			a.cleanup(ctx)
			idle.Reset(time.Second)
			continue
		case first = <-f.ch:
		}
		msgs := []jetstream.Msg{first}
		size := len(first.Data())
	drain:
		for len(msgs) < a.opt.Batch && size < 4<<20 {
			select {
			case m := <-f.ch:
				msgs = append(msgs, m)
				size += len(m.Data())
			default:
				break drain
			}
		}
		if !f.contiguous(msgs) {
			// A delivery went missing (a reconnect drops what was in flight): a later
			// command must not be applied before it. Start over from the checkpoint.
			a.log.Warn("command delivery gap; reopening the partition's consumer", "after", a.ckpt.Seq)
			if err := reopen(); err != nil {
				return err
			}
			continue
		}
		if err := a.applyBatch(ctx, msgs); err != nil {
			return err
		}
		idle.Reset(time.Second)
	}
}

// feed is the partition's stream of commands, in stream order.
type feed struct {
	cc      jetstream.ConsumeContext
	ch      chan jetstream.Msg
	cancel  context.CancelFunc
	lastSeq uint64 // consumer sequence of the last delivery taken
}

// openFeed (re)creates the partition's consumer starting right after the checkpoint,
// so every command not yet applied is delivered at once and in stream order — never
// after a later one that a redelivery timeout would otherwise let through. Commands
// already applied but not acked (a crash between the journal and the ack) are purged.
func (a *Applier) openFeed(ctx context.Context) (*feed, error) {
	durable := "applier-" + strconv.Itoa(a.opt.Partition)
	filter := a.names.CmdFilter(a.opt.Partition)
	stream, err := a.js.Stream(ctx, a.names.CmdStream())
	if err != nil {
		return nil, fmt.Errorf("command stream: %w", err)
	}
	if a.ckpt.Seq > 0 {
		err := stream.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(uint64(a.ckpt.Seq+1)))
		if err != nil {
			return nil, fmt.Errorf("purge applied commands: %w", err)
		}
	}
	if err := stream.DeleteConsumer(ctx, durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("reset consumer: %w", err)
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: a.opt.Batch * 4,
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &feed{ch: make(chan jetstream.Msg, a.opt.Batch*2), cancel: cancel}
	f.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case f.ch <- m:
		case <-fctx.Done():
		}
	}, jetstream.PullMaxMessages(a.opt.Batch*2))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("consume: %w", err)
	}
	return f, nil
}

func (f *feed) close() {
	f.cancel()
	f.cc.Stop()
}

// contiguous checks that msgs follow the last delivery without a gap in the
// consumer's sequence (which counts every delivery, redeliveries included).
func (f *feed) contiguous(msgs []jetstream.Msg) bool {
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return false
		}
		if md.Sequence.Consumer != f.lastSeq+1 {
			return false
		}
		f.lastSeq = md.Sequence.Consumer
	}
	return true
}

// applyBatch decides a batch in memory, commits it with one journal insert, writes the
// records, publishes, then acks. Before the journal insert nothing is changed and a
// failure retries the whole batch; after it the batch is only ever completed.
func (a *Applier) applyBatch(ctx context.Context, msgs []jetstream.Msg) error {
	return a.applyBatchOr(ctx, msgs, nil)
}

// applyBatchOr applies msgs; with unstorable set, the single command in msgs is
// rejected instead of applied.
func (a *Applier) applyBatchOr(ctx context.Context, msgs []jetstream.Msg, unstorable error) error {
	var j *journalDoc
	var tx *Tx
	err := retry(ctx, a.log, "decide", func() error {
		var err error
		j, tx, err = a.decide(ctx, msgs, unstorable)
		if err != nil || j == nil {
			return err
		}
		rec, err := j.record()
		if err != nil {
			return poison{err} // encoding fails the same way every time
		}
		_, err = a.db.Collection(JournalColl).InsertOne(ctx, rec)
		if mongo.IsDuplicateKeyError(err) {
			// An earlier attempt that reported failure did insert it: that journal is
			// the commit, so carry on with it rather than with this decision.
			stored, err := a.readJournal(ctx, j.ID)
			if err != nil {
				return err
			}
			j = stored
			return nil
		}
		var we mongo.WriteException
		if errors.As(err, &we) && len(we.WriteErrors) > 0 {
			return poison{err} // the database refuses these documents: retrying cannot help
		}
		return err
	})
	var p poison
	if errors.As(err, &p) {
		if len(msgs) > 1 {
			// Find the command that cannot be stored: apply the batch one by one.
			for _, m := range msgs {
				if err := a.applyBatchOr(ctx, []jetstream.Msg{m}, nil); err != nil {
					return err
				}
			}
			return nil
		}
		if unstorable != nil {
			return fmt.Errorf("applier %d: cannot store even a rejection: %w", a.opt.Partition, p.err)
		}
		a.log.Error("command rejected: the database refuses its documents", "err", p.err)
		return a.applyBatchOr(ctx, msgs, p.err)
	}
	if err != nil {
		return err
	}
	if j != nil {
		a.commitMemory(tx, j)
		if err := retry(ctx, a.log, "write", func() error { return a.write(ctx, j) }); err != nil {
			return err
		}
		if h := a.opt.Hooks.AfterWrite; h != nil {
			if err := h(a.opt.Partition); err != nil {
				return err
			}
		}
		if err := retry(ctx, a.log, "publish", func() error { return a.publish(ctx, j) }); err != nil {
			return err
		}
		if h := a.opt.Hooks.AfterPublish; h != nil {
			if err := h(a.opt.Partition); err != nil {
				return err
			}
		}
		a.finished = append(a.finished, j.ID)
		if len(a.finished) >= 32 {
			a.cleanup(ctx)
		}
	}
	for _, m := range msgs {
		_ = m.Ack()
	}
	return nil
}

// decide applies the batch's commands to the in-memory state and returns the journal,
// or nil when every message was already applied.
func (a *Applier) decide(ctx context.Context, msgs []jetstream.Msg, unstorable error) (*journalDoc, *Tx, error) {
	clients := map[string]window{}
	var cmds []*Command
	var firstSeq, lastSeq int64
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return nil, nil, fmt.Errorf("metadata: %w", err)
		}
		seq := int64(md.Sequence.Stream)
		if seq <= a.ckpt.Seq || seq <= lastSeq {
			continue // applied before a crash or redelivered
		}
		if firstSeq == 0 {
			firstSeq = seq
		}
		lastSeq = seq
		var c Command
		if err := json.Unmarshal(m.Data(), &c); err != nil {
			a.log.Error("undecodable command dropped", "seq", seq, "err", err)
			continue
		}
		if c.ClientID != "" {
			w, ok := clients[c.ClientID]
			if !ok {
				w = a.ckpt.Clients[c.ClientID]
			}
			if w.seen(c.MutationID) {
				continue // this mutation was applied already: exactly once
			}
			w.add(c.MutationID)
			clients[c.ClientID] = w
		}
		cmds = append(cmds, &c)
	}
	if lastSeq == 0 {
		return nil, nil, nil
	}
	if err := a.prefetch(ctx, cmds); err != nil {
		return nil, nil, err
	}
	tx := &Tx{ctx: ctx, a: a, names: a.names, batch: map[string]stagedWrite{}}
	var outcomes []mutationDoc
	for _, c := range cmds {
		tx.begin(c)
		var err error
		if h, ok := a.reg.m[c.Name]; unstorable != nil {
			err = fault.New(fault.Conflict, "unstorable", "the server could not store this change; it was not applied")
		} else if ok {
			err = h.Apply(tx, c)
		} else {
			err = fault.New(fault.Unprocessable, "not_implemented", "this server does not apply "+strconv.Quote(c.Name)+" yet")
		}
		if err != nil && fault.KindOf(err) == fault.Internal {
			return nil, nil, err
		}
		refs := tx.end(err == nil)
		o := Outcome{ID: c.ID, MutationID: c.MutationID, Status: Applied, Changes: refs, At: c.IssuedAt}
		if err != nil {
			fe := fault.As(err)
			o.Status = Rejected
			o.Error = &ErrorBody{Code: fe.Code, Message: fe.Message, Fields: fe.Fields}
		}
		if c.ClientID != "" {
			outcomes = append(outcomes, mutationDoc{ID: c.ID, ClientID: c.ClientID, MutationID: c.MutationID,
				Status: o.Status, Error: toErrorDoc(o.Error), Changes: o.Changes, At: o.At})
		}
		data, _ := json.Marshal(o)
		tx.batchOut = append(tx.batchOut, outMsg{Subject: a.names.ResSubject(c.ID), MsgID: "res:" + c.ID, Data: data, Stage: 1})
	}
	j := &journalDoc{
		ID:        fmt.Sprintf("%d-%d", a.opt.Partition, lastSeq),
		Partition: a.opt.Partition,
		FirstSeq:  firstSeq,
		LastSeq:   lastSeq,
		Outbox:    tx.batchOut,
		At:        time.Now().UTC(),
	}
	ws := make([]stagedWrite, 0, len(tx.batch))
	for _, w := range tx.batch {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(x, y stagedWrite) int { return x.seq - y.seq })
	for _, w := range ws {
		j.Writes = append(j.Writes, journalWrite{Coll: w.key.Coll, ID: w.key.ID, Doc: w.raw, New: w.isNew})
	}
	for _, o := range outcomes {
		raw, err := bson.Marshal(o)
		if err != nil {
			return nil, nil, err
		}
		j.Writes = append(j.Writes, journalWrite{Coll: MutationColl, ID: o.ID, Doc: raw, New: true})
	}
	// The journal carries only this batch's devices; the full map is saved with the
	// checkpoint at cleanup, and recovery merges the two.
	j.Ckpt = checkpointDoc{ID: a.ckptID(), Seq: lastSeq}
	for k, w := range clients {
		j.Ckpt.Clients = append(j.Ckpt.Clients, clientMax{k, w})
	}
	slices.SortFunc(j.Ckpt.Clients, func(x, y clientMax) int { return strings.Compare(x.Client, y.Client) })
	return j, tx, nil
}

// commitMemory makes the batch's state the partition's state.
// The journal is the truth: the cache takes its records (not the decision's, which
// may differ when an earlier attempt's journal is the one that was committed).
func (a *Applier) commitMemory(_ *Tx, j *journalDoc) {
	if len(a.cache) > a.opt.CacheSize && !a.complete {
		a.cache = map[string]bson.Raw{}
	}
	for _, w := range j.Writes {
		if w.Coll == MutationColl {
			continue // outcomes are never read back by handlers
		}
		a.cache[Key{w.Coll, w.ID}.String()] = w.Doc
	}
	a.ckpt.merge(j.Ckpt)
	outcomes := 0
	for _, o := range j.Outbox {
		if o.Stage == 1 {
			outcomes++
		}
	}
	a.applied.Add(int64(outcomes))
}

// readJournal reads a committed journal back.
func (a *Applier) readJournal(ctx context.Context, id string) (*journalDoc, error) {
	var rec journalRecord
	if err := a.db.Collection(JournalColl).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&rec); err != nil {
		return nil, fmt.Errorf("read journal %s: %w", id, err)
	}
	var j journalDoc
	if err := bson.Unmarshal(rec.Body, &j); err != nil {
		return nil, fmt.Errorf("decode journal %s: %w", id, err)
	}
	return &j, nil
}

// write applies a journal's writes. It is idempotent: new records are inserted, and
// an insert that finds the record (a replay after a crash) becomes a whole-document
// replace, as every other write is.
func (a *Applier) write(ctx context.Context, j *journalDoc) error {
	byColl := map[string][]mongo.WriteModel{}
	var order []string
	add := func(coll string, m mongo.WriteModel) {
		if _, ok := byColl[coll]; !ok {
			order = append(order, coll)
		}
		byColl[coll] = append(byColl[coll], m)
	}
	replace := func(coll, id string, doc any) mongo.WriteModel {
		return mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(doc).SetUpsert(true)
	}
	for _, w := range j.Writes {
		switch {
		case w.Doc == nil:
			add(w.Coll, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: w.ID}}))
		case w.New:
			add(w.Coll, mongo.NewInsertOneModel().SetDocument(w.Doc))
		default:
			add(w.Coll, replace(w.Coll, w.ID, w.Doc))
		}
	}
	for _, coll := range order {
		models := byColl[coll]
		_, err := a.db.Collection(coll).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
			// Inserts of records a replay finds already written: replace them instead.
			var again []mongo.WriteModel
			for _, we := range bwe.WriteErrors {
				ins, ok := models[we.Index].(*mongo.InsertOneModel)
				if !ok || !mongo.IsDuplicateKeyError(we) {
					return fmt.Errorf("write %s: %w", coll, err)
				}
				doc := ins.Document.(bson.Raw)
				id, _ := doc.Lookup("_id").StringValueOK()
				mine, _ := doc.Lookup(KeyField).StringValueOK()
				stored, rerr := a.read(ctx, Key{coll, id})
				if rerr != nil {
					return rerr
				}
				owner := ""
				if stored != nil {
					owner, _ = stored.Lookup(KeyField).StringValueOK()
				}
				if stored != nil && owner != mine {
					// Another partition's record with the same id: never overwrite it.
					a.log.Error("record id taken by another partition; write dropped", "coll", coll, "id", id, "owner", owner)
					continue
				}
				again = append(again, replace(coll, id, doc))
			}
			if len(again) == 0 {
				continue
			}
			if _, err = a.db.Collection(coll).BulkWrite(ctx, again, options.BulkWrite().SetOrdered(false)); err != nil {
				return fmt.Errorf("write %s: %w", coll, err)
			}
		} else if err != nil {
			return fmt.Errorf("write %s: %w", coll, err)
		}
	}
	return nil
}

// publish sends a journal's outbox: records and events first, then outcomes, so an
// outcome is never visible before the changes it reports. Message ids make a repeat
// after a crash a no-op within the duplicate window; consumers also de-duplicate.
func (a *Applier) publish(ctx context.Context, j *journalDoc) error {
	for stage := 0; stage <= 1; stage++ {
		var futs []jetstream.PubAckFuture
		for _, o := range j.Outbox {
			if o.Stage != stage {
				continue
			}
			m := nats.NewMsg(o.Subject)
			m.Data = o.Data
			opts := []jetstream.PublishOpt{jetstream.WithMsgID(o.MsgID)}
			if o.TTL > 0 {
				opts = append(opts, jetstream.WithMsgTTL(time.Duration(o.TTL)))
			}
			f, err := a.js.PublishMsgAsync(m, opts...)
			if err != nil {
				return fmt.Errorf("publish %s: %w", o.Subject, err)
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// recover finishes the work a crash interrupted and loads the checkpoint. A journal is
// inserted only after the one before it is fully written and published, so only the
// newest journal can be unfinished: it is written and published again (both are
// idempotent, and nothing newer exists that a repeat could overwrite).
func (a *Applier) recover(ctx context.Context) error {
	cur, err := a.db.Collection(JournalColl).Find(ctx, bson.D{{Key: "partition", Value: a.opt.Partition}})
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	var recs []journalRecord
	if err := cur.All(ctx, &recs); err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	js := make([]journalDoc, len(recs))
	for i, r := range recs {
		if err := bson.Unmarshal(r.Body, &js[i]); err != nil {
			return fmt.Errorf("decode journal %s: %w", r.ID, err)
		}
	}
	var cd checkpointDoc
	err = a.db.Collection(CheckpointColl).FindOne(ctx, bson.D{{Key: "_id", Value: a.ckptID()}}).Decode(&cd)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	a.ckpt = fromCheckpointDoc(cd)
	a.finished = nil
	if len(js) > 0 {
		slices.SortFunc(js, func(x, y journalDoc) int { return int(x.LastSeq - y.LastSeq) })
		j := &js[len(js)-1]
		saved := a.ckpt.Seq
		for i := range js {
			a.ckpt.merge(js[i].Ckpt) // journals not yet folded into the saved checkpoint
		}
		if j.LastSeq > saved {
			a.log.Info("completing the last batch after a restart", "journal", j.ID, "writes", len(j.Writes), "messages", len(j.Outbox))
			if err := a.write(ctx, j); err != nil {
				return err
			}
			if err := a.publish(ctx, j); err != nil {
				return err
			}
		}
		for _, j := range js {
			a.finished = append(a.finished, j.ID)
		}
		if err := a.saveCheckpoint(ctx); err != nil {
			return err
		}
	}
	a.cache = map[string]bson.Raw{}
	a.complete = false
	if a.opt.Preload {
		return a.preload(ctx)
	}
	return nil
}

// preload reads the partition's records of every owned collection into memory.
func (a *Applier) preload(ctx context.Context) error {
	start := time.Now()
	n := 0
	for _, coll := range a.reg.colls {
		cur, err := a.db.Collection(coll).Find(ctx, bson.D{})
		if err != nil {
			return fmt.Errorf("preload %s: %w", coll, err)
		}
		for cur.Next(ctx) {
			key, ok := cur.Current.Lookup(KeyField).StringValueOK()
			if !ok || a.names.Partition(key) != a.opt.Partition {
				continue
			}
			id, _ := cur.Current.Lookup("_id").StringValueOK()
			a.cache[Key{coll, id}.String()] = slices.Clone(cur.Current)
			n++
		}
		if err := cur.Err(); err != nil {
			return fmt.Errorf("preload %s: %w", coll, err)
		}
		_ = cur.Close(ctx)
	}
	a.complete = true
	a.log.Debug("partition preloaded", "records", n, "took", time.Since(start))
	return nil
}

// cleanup saves the checkpoint and drops finished journals; failures are retried at
// the next cleanup (the journals keep the checkpoint meanwhile).
func (a *Applier) cleanup(ctx context.Context) {
	if len(a.finished) == 0 {
		return
	}
	if err := a.saveCheckpoint(ctx); err != nil {
		a.log.Warn("journal cleanup failed; will retry", "err", err)
	}
}

func (a *Applier) saveCheckpoint(ctx context.Context) error {
	cd := checkpointDoc{ID: a.ckptID(), Seq: a.ckpt.Seq}
	for c, w := range a.ckpt.Clients {
		cd.Clients = append(cd.Clients, clientMax{c, w})
	}
	slices.SortFunc(cd.Clients, func(x, y clientMax) int { return strings.Compare(x.Client, y.Client) })
	_, err := a.db.Collection(CheckpointColl).ReplaceOne(ctx, bson.D{{Key: "_id", Value: cd.ID}}, cd, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	_, err = a.db.Collection(JournalColl).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: a.finished}}}})
	if err != nil {
		return fmt.Errorf("drop journals: %w", err)
	}
	a.finished = nil
	return nil
}

// merge folds a journal's checkpoint (its batch's devices) into c; maxima make it
// idempotent and order-free.
func (c *checkpoint) merge(cd checkpointDoc) {
	c.Seq = max(c.Seq, cd.Seq)
	for _, cm := range cd.Clients {
		c.Clients[cm.Client] = c.Clients[cm.Client].merge(cm.Window)
	}
}

func fromCheckpointDoc(cd checkpointDoc) checkpoint {
	c := checkpoint{Seq: cd.Seq, Clients: make(map[string]window, len(cd.Clients))}
	for _, cm := range cd.Clients {
		c.Clients[cm.Client] = cm.Window
	}
	return c
}

// prefetch loads, one query per collection, the records the batch will read that
// are not in memory.
func (a *Applier) prefetch(ctx context.Context, cmds []*Command) error {
	want := map[string][]string{}
	if a.complete {
		return nil
	}
	for _, c := range cmds {
		h, ok := a.reg.m[c.Name]
		if !ok || h.Keys == nil {
			continue
		}
		for _, k := range h.Keys(c) {
			if _, ok := a.cache[k.String()]; ok || k.ID == "" {
				continue
			}
			want[k.Coll] = append(want[k.Coll], k.ID)
		}
	}
	for coll, ids := range want {
		slices.Sort(ids)
		ids = slices.Compact(ids)
		cur, err := a.db.Collection(coll).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		if err != nil {
			return fmt.Errorf("prefetch %s: %w", coll, err)
		}
		found := map[string]bson.Raw{}
		for cur.Next(ctx) {
			id, _ := cur.Current.Lookup("_id").StringValueOK()
			found[id] = slices.Clone(cur.Current)
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return fmt.Errorf("prefetch %s: %w", coll, err)
		}
		// Only a complete answer may say a record is absent.
		for _, id := range ids {
			a.cache[Key{coll, id}.String()] = found[id]
		}
	}
	return nil
}

// load reads one record on a cache miss (none when the partition is preloaded).
func (a *Applier) load(ctx context.Context, k Key) (bson.Raw, error) {
	if a.complete {
		return nil, nil
	}
	raw, err := a.read(ctx, k)
	if err != nil {
		return nil, err
	}
	a.cache[k.String()] = raw
	return raw, nil
}

// read reads one record from the database; nil when absent.
func (a *Applier) read(ctx context.Context, k Key) (bson.Raw, error) {
	raw, err := a.db.Collection(k.Coll).FindOne(ctx, bson.D{{Key: "_id", Value: k.ID}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fault.Wrap(err, "load "+k.Coll)
	}
	return slices.Clone(raw), nil
}

// ErrStopped is returned by a hook to stop an applier as a crash would.
var ErrStopped = errors.New("applier stopped by hook")

// poison is a database error that retrying cannot cure.
type poison struct{ err error }

func (p poison) Error() string { return p.err.Error() }

// retry runs f until it succeeds, ctx ends, or f returns ErrStopped.
func retry(ctx context.Context, log *slog.Logger, what string, f func() error) error {
	wait := 50 * time.Millisecond
	for {
		err := f()
		if err == nil || errors.Is(err, ErrStopped) || errors.As(err, new(poison)) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("applier step failed; retrying", "step", what, "err", err, "wait", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*2, 5*time.Second)
	}
}
