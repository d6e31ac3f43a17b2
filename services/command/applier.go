package command

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
	"sync/atomic"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/ferret"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collections the write path keeps for itself.
const (
	CheckpointColl = "checkpoints" // per partition: last applied stream sequence
	MutationColl   = "mutations"   // outcome of every handset mutation, by command id
)

const (
	// JournalKeep is how many journals the journal stream keeps per partition.
	JournalKeep = 64
	// checkpointEvery is how many finished batches may pass before the checkpoint is
	// saved; with the batches in flight it stays well below JournalKeep, so a journal
	// leaves the stream only once the saved checkpoint covers it.
	checkpointEvery = 32
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

	// The applier runs in two stages, each in its own goroutine. The first decides a
	// batch and commits its journal; the second writes the batch's records, publishes
	// and acks, while the first decides the next batch. The hand-over between them
	// holds no buffer, so at most two journals are ever unfinished (see recover).

	// First stage.
	cache map[string]bson.Raw // nil value: known absent
	// complete: the cache holds every record of the partition (Preload).
	complete bool
	ckpt     checkpoint // every committed journal folded in

	// Second stage.
	done checkpoint // every finished journal folded in: what is saved
	// unsaved counts finished journals not yet folded into the saved checkpoint; until
	// it is saved, they carry it.
	unsaved int

	ready   atomic.Bool
	applied atomic.Int64
	// handOff passes a committed batch to the second stage (set by Run).
	handOff func(finishJob) error
}

// pipelined is how many committed journals may wait for the second stage beyond the
// one it is finishing: the hand-over holds none, so the first stage commits the next
// journal while the second finishes the previous one, and then waits.
const pipelined = 1

// finishJob hands a committed batch to the second stage; a job with barrier set only
// reports that every earlier job is finished.
type finishJob struct {
	j       *journalDoc // nil: nothing to write, only acks
	msgs    []jetstream.Msg
	barrier chan struct{}
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

// journalDoc is a committed batch: the documents to write, the messages to publish and
// the devices' windows after it. It is stored as one BSON message on the partition's
// journal subject; publishing it is the commit.
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
	ctx, stop := context.WithCancel(ctx)
	jobs := make(chan finishJob)
	failed := make(chan error, 1)
	finisherDone := make(chan struct{})
	go func() {
		defer close(finisherDone)
		if err := a.finisher(ctx, jobs); err != nil {
			failed <- err
			stop()
		}
	}()
	defer func() {
		stop()
		<-finisherDone
	}()
	a.handOff = func(job finishJob) error {
		select {
		case jobs <- job:
			return nil
		case <-ctx.Done():
			return a.stopCause(failed)
		}
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
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			return a.stopCause(failed)
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
			if ctx.Err() != nil {
				return a.stopCause(failed)
			}
			return err
		}
	}
}

// stopCause is what Run returns once ctx is done: the second stage's failure if that
// is what stopped it, else nil (the caller's context ended).
func (a *Applier) stopCause(failed <-chan error) error {
	select {
	case err := <-failed:
		return err
	default:
		return nil
	}
}

// finisher is the second stage: it writes, publishes and acks each committed batch in
// the order the first stage committed them, and saves the checkpoint now and then.
func (a *Applier) finisher(ctx context.Context, jobs <-chan finishJob) error {
	idle := time.NewTimer(time.Second)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-idle.C:
			a.cleanup(ctx)
			idle.Reset(time.Second)
		case job := <-jobs:
			if job.barrier != nil {
				close(job.barrier)
				continue
			}
			if err := a.finish(ctx, job); err != nil {
				return err
			}
			idle.Reset(time.Second)
		}
	}
}

// finish completes one committed batch: records written, then change feed, events and
// outcomes published, then the commands acked.
func (a *Applier) finish(ctx context.Context, job finishJob) error {
	if j := job.j; j != nil {
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
		a.done.merge(j.Ckpt)
		a.unsaved++
		if a.unsaved >= checkpointEvery {
			// Journals beyond JournalKeep leave the stream: save before that can happen.
			if err := retry(ctx, a.log, "checkpoint", func() error { return a.saveCheckpoint(ctx) }); err != nil {
				return err
			}
		}
	}
	for _, m := range job.msgs {
		_ = m.Ack()
	}
	return nil
}

// barrier waits until the second stage has finished every batch handed to it.
func (a *Applier) barrier() error {
	ch := make(chan struct{})
	if err := a.handOff(finishJob{barrier: ch}); err != nil {
		return err
	}
	<-ch
	return nil
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
		body, err := bson.Marshal(j)
		if err != nil {
			return poison{fmt.Errorf("encode journal: %w", err)} // fails the same way every time
		}
		if int64(len(body)) > a.js.Conn().MaxPayload()-4096 {
			return poison{fmt.Errorf("journal of %d bytes exceeds the broker's message limit", len(body))}
		}
		m := nats.NewMsg(a.names.JrnSubject(a.opt.Partition))
		m.Data = body
		ack, err := a.js.PublishMsg(ctx, m, jetstream.WithMsgID(j.ID))
		if err != nil {
			return err
		}
		if ack.Duplicate {
			// An earlier attempt that reported failure did commit: that journal is the
			// commit, so carry on with it rather than with this decision.
			stored, err := a.lastJournal(ctx)
			if err != nil {
				return err
			}
			if stored == nil || stored.ID != j.ID {
				return fmt.Errorf("journal %s committed but not found", j.ID)
			}
			j = stored
		}
		return nil
	})
	var p poison
	if errors.As(err, &p) {
		if len(msgs) > 1 {
			// Too big a journal, or a command that cannot be stored: apply the batch in
			// halves, down to the one command at fault.
			half := len(msgs) / 2
			if err := a.applyBatchOr(ctx, msgs[:half], nil); err != nil {
				return err
			}
			return a.applyBatchOr(ctx, msgs[half:], nil)
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
		if err := a.commitMemory(tx, j); err != nil {
			return err
		}
	}
	return a.handOff(finishJob{j: j, msgs: msgs})
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
func (a *Applier) commitMemory(_ *Tx, j *journalDoc) error {
	if len(a.cache) > a.opt.CacheSize && !a.complete {
		// Records of batches still being written must not be read back from the
		// database: empty the cache only once the second stage has caught up.
		if err := a.barrier(); err != nil {
			return err
		}
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
	return nil
}

// lastJournal reads the partition's newest committed journal; nil when there is none.
func (a *Applier) lastJournal(ctx context.Context) (*journalDoc, error) {
	stream, err := a.js.Stream(ctx, a.names.JrnStream())
	if err != nil {
		return nil, fmt.Errorf("journal stream: %w", err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, a.names.JrnSubject(a.opt.Partition))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var j journalDoc
	if err := bson.Unmarshal(m.Data, &j); err != nil {
		return nil, fmt.Errorf("decode journal: %w", err)
	}
	return &j, nil
}

// published reports whether every outcome of j is in the outcome stream. Outcomes
// are published last, once the records are written and the change feed and events
// published, so then j is finished.
func (a *Applier) published(ctx context.Context, j *journalDoc) (bool, error) {
	stream, err := a.js.Stream(ctx, a.names.ResStream())
	if err != nil {
		return false, fmt.Errorf("outcome stream: %w", err)
	}
	for _, o := range j.Outbox {
		if o.Stage != 1 {
			continue
		}
		_, err := stream.GetLastMsgForSubject(ctx, o.Subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read outcome: %w", err)
		}
	}
	return true, nil
}

// journals reads every journal the stream keeps for the partition, oldest first.
func (a *Applier) journals(ctx context.Context) ([]journalDoc, error) {
	stream, err := a.js.Stream(ctx, a.names.JrnStream())
	if err != nil {
		return nil, fmt.Errorf("journal stream: %w", err)
	}
	var out []journalDoc
	subj := a.names.JrnSubject(a.opt.Partition)
	for seq := uint64(1); ; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		var j journalDoc
		if err := bson.Unmarshal(m.Data, &j); err != nil {
			return nil, fmt.Errorf("decode journal at %d: %w", m.Sequence, err)
		}
		out = append(out, j)
		seq = m.Sequence + 1
	}
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
	for _, w := range j.Writes {
		switch {
		case w.Doc == nil:
			add(w.Coll, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: w.ID}}))
		case w.New:
			add(w.Coll, mongo.NewInsertOneModel().SetDocument(w.Doc))
		default:
			add(w.Coll, replaceModel(w.ID, w.Doc))
		}
	}
	for _, coll := range order {
		// Inserts go in one command; replaces and deletes in commands of at most
		// ferret.MaxStatements (see there: more deadlock FerretDB on SQLite).
		var inserts, others []mongo.WriteModel
		for _, m := range byColl[coll] {
			if _, ok := m.(*mongo.InsertOneModel); ok {
				inserts = append(inserts, m)
			} else {
				others = append(others, m)
			}
		}
		for _, models := range append([][]mongo.WriteModel{inserts}, ferret.Chunks(others)...) {
			if err := a.writeBulk(ctx, coll, models); err != nil {
				return err
			}
		}
	}
	return nil
}

// replaceModel writes a whole record by _id, inserting it when missing.
func replaceModel(id string, doc any) mongo.WriteModel {
	return mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(doc).SetUpsert(true)
}

// writeBulk writes models of one collection in one bulk write; inserts that find
// their record already written (a replay) are written again as replaces.
func (a *Applier) writeBulk(ctx context.Context, coll string, models []mongo.WriteModel) error {
	if len(models) == 0 {
		return nil
	}
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
			again = append(again, replaceModel(id, doc))
		}
		if len(again) == 0 {
			return nil
		}
		for _, chunk := range ferret.Chunks(again) {
			if _, err = a.db.Collection(coll).BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false)); err != nil {
				return fmt.Errorf("write %s: %w", coll, err)
			}
		}
	} else if err != nil {
		return fmt.Errorf("write %s: %w", coll, err)
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
			if o.Target != "" {
				opts = append(opts, jetstream.WithScheduleAt(time.Unix(0, o.At)), jetstream.WithScheduleTarget(o.Target))
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
// inserted only once every journal but the one before it is fully written and
// published (see pipelined), so only the newest two can be unfinished: they are
// written and published again, oldest first (both are idempotent, and replaying them
// in order ends with the newest versions, as nothing newer exists).
func (a *Applier) recover(ctx context.Context) error {
	js, err := a.journals(ctx)
	if err != nil {
		return err
	}
	var cd checkpointDoc
	err = a.db.Collection(CheckpointColl).FindOne(ctx, bson.D{{Key: "_id", Value: a.ckptID()}}).Decode(&cd)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	a.ckpt = fromCheckpointDoc(cd)
	a.unsaved = 0
	if len(js) > 0 {
		slices.SortFunc(js, func(x, y journalDoc) int { return int(x.LastSeq - y.LastSeq) })
		saved := a.ckpt.Seq
		for i := range js {
			a.ckpt.merge(js[i].Ckpt) // journals not yet folded into the saved checkpoint
		}
		// The unfinished journals are the newest ones after the last finished one. A
		// finished journal must not be published again: the change feed keeps only
		// the latest version of a record, so JetStream no longer remembers the message
		// ids of versions a later journal replaced, and would take them as new.
		from := max(0, len(js)-(pipelined+1))
		for i := len(js) - 1; i >= from; i-- {
			done, err := a.published(ctx, &js[i])
			if err != nil {
				return err
			}
			if done {
				from = i + 1
				break
			}
		}
		for i := from; i < len(js); i++ {
			j := &js[i]
			if j.LastSeq <= saved {
				continue
			}
			a.log.Info("completing a batch after a restart", "journal", j.ID, "writes", len(j.Writes), "messages", len(j.Outbox))
			if err := a.write(ctx, j); err != nil {
				return err
			}
			if err := a.publish(ctx, j); err != nil {
				return err
			}
		}
	}
	a.done = a.ckpt.clone()
	if a.done.Seq > cd.Seq {
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

// cleanup saves the checkpoint when idle; a failure is retried at the next cleanup
// (the journals keep the checkpoint meanwhile).
func (a *Applier) cleanup(ctx context.Context) {
	if a.unsaved == 0 {
		return
	}
	if err := a.saveCheckpoint(ctx); err != nil {
		a.log.Warn("saving the checkpoint failed; will retry", "err", err)
	}
}

func (a *Applier) saveCheckpoint(ctx context.Context) error {
	cd := checkpointDoc{ID: a.ckptID(), Seq: a.done.Seq}
	for c, w := range a.done.Clients {
		cd.Clients = append(cd.Clients, clientMax{c, w})
	}
	slices.SortFunc(cd.Clients, func(x, y clientMax) int { return strings.Compare(x.Client, y.Client) })
	_, err := a.db.Collection(CheckpointColl).ReplaceOne(ctx, bson.D{{Key: "_id", Value: cd.ID}}, cd, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	a.unsaved = 0
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

func (c checkpoint) clone() checkpoint {
	return checkpoint{Seq: c.Seq, Clients: maps.Clone(c.Clients)}
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
