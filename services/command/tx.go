package command

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Key names one stored record.
type Key struct{ Coll, ID string }

func (k Key) String() string { return k.Coll + "\x00" + k.ID }

// Record is a record a command writes: Doc is what MongoDB stores (it must carry its
// id as "_id"), Wire is what handsets receive in changes[].doc.
type Record struct {
	Coll    string
	ID      string
	Version int64
	// Path is the record's scope path (org.PathSubject): it decides who pulls it.
	Path string
	Doc  any
	Wire any
	// OldPath, when the record moved to another scope, is where a tombstone goes.
	OldPath string
	// Private records (users with their password hashes) never go on the change feed.
	Private bool
}

// Handler applies one kind of command. Apply returns a *fault.Error of a non-internal
// kind to reject the command (nothing it staged is kept); any other error aborts the
// batch, which is retried. Keys, when set, lists the records Apply will read, so a
// batch loads them in one round trip.
type Handler struct {
	Apply func(tx *Tx, cmd *Command) error
	Keys  func(cmd *Command) []Key
}

// ArgKey returns a Handler.Keys for commands whose args name their record in one
// string field (e.g. "incidentId").
func ArgKey(coll, field string) func(*Command) []Key {
	return func(c *Command) []Key {
		var args map[string]json.RawMessage
		var id string
		if json.Unmarshal(c.Args, &args) == nil {
			_ = json.Unmarshal(args[field], &id)
		}
		return []Key{{Coll: coll, ID: id}}
	}
}

// Registry maps command names to handlers and lists the collections the write path
// owns.
type Registry struct {
	m     map[string]Handler
	colls []string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Handler{}} }

// Own declares collections whose records are written only through the write path, so
// an applier may hold its partition's share of them in memory.
func (r *Registry) Own(colls ...string) { r.colls = append(r.colls, colls...) }

// Collections lists the collections the write path writes: those the handlers own and
// the write path's own.
func (r *Registry) Collections() []string {
	return append(slices.Clone(r.colls), MutationColl, CheckpointColl)
}

// Register adds a handler; registering a name twice is a programming error.
func (r *Registry) Register(name string, h Handler) {
	if _, dup := r.m[name]; dup {
		panic("command: handler registered twice: " + name)
	}
	r.m[name] = h
}

// Known reports whether a command name has a handler.
func (r *Registry) Known(name string) bool { _, ok := r.m[name]; return ok }

type outMsg struct {
	Subject string `bson:"subject"`
	MsgID   string `bson:"msgId"`
	Data    []byte `bson:"data"`
	TTL     int64  `bson:"ttl,omitempty"` // nanoseconds; tombstones and cancelled timers
	Stage   int    `bson:"stage"`         // 0 records and events, 1 outcomes (after 0)
	// At (unix nanoseconds) and Target make a JetStream message schedule: the server
	// publishes Data to Target at At (timers).
	At     int64  `bson:"at,omitempty"`
	Target string `bson:"target,omitempty"`
}

// Tx is what a handler sees: reads through the partition's cache, staged writes,
// events. It is confined to one applier goroutine.
type Tx struct {
	ctx   context.Context
	a     *Applier
	cmd   *Command
	names Names

	// batch holds writes of the commands of this batch already applied; cur those of
	// the command being applied (dropped if it is rejected).
	batch, cur       map[string]stagedWrite
	batchOut, curOut []outMsg
	curRefs          []ChangeRef
	events           int
}

type stagedWrite struct {
	key Key
	raw bson.Raw // nil means delete
	seq int      // order of first write, to keep writes in a stable order
	// isNew: the record did not exist before this batch, so it can be inserted (an
	// insert is much cheaper than a replace on FerretDB's SQLite backend).
	isNew bool
}

// Now is the time the command entered the system.
func (tx *Tx) Now() time.Time { return tx.cmd.IssuedAt }

// Get loads a record into out (a pointer to a bson-tagged struct). found is false when
// the record does not exist.
func (tx *Tx) Get(coll, id string, out any) (bool, error) {
	k := Key{coll, id}
	raw, ok := tx.lookup(k)
	if !ok {
		var err error
		raw, err = tx.a.load(tx.ctx, k)
		if err != nil {
			return false, err
		}
	}
	if raw == nil {
		return false, nil
	}
	if err := bson.Unmarshal(raw, out); err != nil {
		return false, fault.Wrap(err, "decode "+coll)
	}
	return true, nil
}

// Peek reads a record of another partition (reference data such as a parent unit)
// straight from the database. Another writer owns it, so it is never cached and may be
// a moment old.
func (tx *Tx) Peek(coll, id string, out any) (bool, error) {
	raw, err := tx.a.read(tx.ctx, Key{coll, id})
	if err != nil || raw == nil {
		return false, err
	}
	if err := bson.Unmarshal(raw, out); err != nil {
		return false, fault.Wrap(err, "decode "+coll)
	}
	return true, nil
}

func (tx *Tx) lookup(k Key) (bson.Raw, bool) {
	ks := k.String()
	if w, ok := tx.cur[ks]; ok {
		return w.raw, true
	}
	if w, ok := tx.batch[ks]; ok {
		return w.raw, true
	}
	raw, ok := tx.a.cache[ks]
	return raw, ok
}

// KeyField is stamped on every record the write path stores: the partition key of the
// commands that write it, so an applier can find its partition's records.
const KeyField = "_k"

// Put stores a record and publishes it on the change feed.
func (tx *Tx) Put(r Record) error {
	raw, err := bson.Marshal(r.Doc)
	if err != nil {
		return fault.Wrap(err, "encode "+r.Coll)
	}
	if err := storable(raw, 0); err != nil {
		return fault.New(fault.Conflict, "unstorable", "the change cannot be stored: "+err.Error())
	}
	raw = StampKey(raw, tx.cmd.Key)
	wire, err := json.Marshal(r.Wire)
	if err != nil {
		return fault.Wrap(err, "encode "+r.Coll)
	}
	tx.stage(Key{r.Coll, r.ID}, raw)
	tx.curRefs = append(tx.curRefs, ChangeRef{Collection: r.Coll, ID: r.ID, Op: "put", Version: r.Version})
	if r.Private {
		return nil
	}
	if r.OldPath != "" && r.OldPath != r.Path {
		// The tombstone at the old place goes first, so the newest message about the
		// record anywhere is its new version.
		tx.tombstone(r.OldPath, r.Coll, r.ID, r.Version)
	}
	ch, _ := json.Marshal(Change{Collection: r.Coll, Op: "put", ID: r.ID, Version: r.Version, Doc: wire})
	tx.curOut = append(tx.curOut, outMsg{
		Subject: tx.names.ChgSubject(r.Path, r.Coll, r.ID),
		MsgID:   fmt.Sprintf("chg:%s:%s:%d", r.Coll, r.ID, r.Version),
		Data:    ch,
	})
	return nil
}

// Delete removes a record and publishes a tombstone kept for the horizon.
func (tx *Tx) Delete(coll, id, path string, version int64) {
	tx.stage(Key{coll, id}, nil)
	tx.tombstone(path, coll, id, version)
	tx.curRefs = append(tx.curRefs, ChangeRef{Collection: coll, ID: id, Op: "del", Version: version})
}

func (tx *Tx) tombstone(path, coll, id string, version int64) {
	ch, _ := json.Marshal(Change{Collection: coll, Op: "del", ID: id, Version: version})
	tx.curOut = append(tx.curOut, outMsg{
		Subject: tx.names.ChgSubject(path, coll, id),
		MsgID:   fmt.Sprintf("del:%s:%s:%d:%s", coll, id, version, path),
		Data:    ch,
		TTL:     int64(tx.a.opt.Horizon),
	})
}

// Schedule sets the timer name to fire at at with data: the stream of timers delivers
// data on the timer's subject then (TimerSubject), where a consumer acts on it. Setting
// a timer again replaces it. It is published with the batch, so it survives a crash
// like the records it belongs to.
func (tx *Tx) Schedule(name string, at time.Time, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fault.Wrap(err, "encode timer")
	}
	tx.curOut = append(tx.curOut, outMsg{
		Subject: tx.names.SchedSubject(name),
		MsgID:   "sched:" + tx.cmd.ID + ":" + name,
		Data:    raw,
		At:      at.UnixNano(),
		Target:  tx.names.TimerSubject(name),
	})
	return nil
}

// Unschedule cancels the timer name: a plain message replaces its schedule (the
// stream keeps one message per timer) and expires soon after.
func (tx *Tx) Unschedule(name string) {
	tx.curOut = append(tx.curOut, outMsg{
		Subject: tx.names.SchedSubject(name),
		MsgID:   "unsched:" + tx.cmd.ID + ":" + name,
		Data:    []byte("cancelled"),
		TTL:     int64(time.Minute),
	})
}

// Reference records that a record of unit references an attachment, so downloads of
// it follow the record's scope.
func (tx *Tx) Reference(sha, recordID, unit string) {
	tx.curOut = append(tx.curOut, outMsg{
		Subject: "$KV." + tx.names.AttachRefsBucket() + "." + sha + "." + recordID,
		MsgID:   "ref:" + sha + ":" + recordID + ":" + unit,
		Data:    []byte(unit),
	})
}

// Emit publishes a domain event of a type at a unit path (org.PathSubject).
func (tx *Tx) Emit(typ, path string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fault.Wrap(err, "encode event")
	}
	tx.events++
	id := tx.cmd.ID + "#" + strconv.Itoa(tx.events)
	ev, _ := json.Marshal(Event{ID: id, Type: typ, Command: tx.cmd.Name, Actor: tx.cmd.Actor, At: tx.cmd.IssuedAt, Data: raw})
	tx.curOut = append(tx.curOut, outMsg{Subject: tx.names.EvtSubject(typ, path), MsgID: "evt:" + id, Data: ev})
	return nil
}

func (tx *Tx) stage(k Key, raw bson.Raw) {
	ks := k.String()
	seq := len(tx.batch) + len(tx.cur)
	prev, known := tx.a.cache[ks]
	isNew := (known && prev == nil) || (!known && tx.a.complete)
	if w, ok := tx.cur[ks]; ok {
		seq, isNew = w.seq, w.isNew
	} else if w, ok := tx.batch[ks]; ok {
		seq, isNew = w.seq, w.isNew
	}
	tx.cur[ks] = stagedWrite{key: k, raw: raw, seq: seq, isNew: isNew && raw != nil}
}

// begin starts applying cmd.
func (tx *Tx) begin(cmd *Command) {
	tx.cmd = cmd
	tx.cur = map[string]stagedWrite{}
	tx.curOut = nil
	tx.curRefs = nil
	tx.events = 0
}

// end keeps (ok) or drops the current command's writes, returning its change refs.
func (tx *Tx) end(ok bool) []ChangeRef {
	refs := tx.curRefs
	if ok {
		for k, w := range tx.cur {
			tx.batch[k] = w
		}
		tx.batchOut = append(tx.batchOut, tx.curOut...)
	} else {
		refs = nil
	}
	tx.cur, tx.curOut, tx.curRefs = nil, nil, nil
	return refs
}

// StampKey appends the partition key to a BSON document (replacing none: domain
// documents never carry it).
func StampKey(doc bson.Raw, key string) bson.Raw {
	if _, err := doc.LookupErr(KeyField); err == nil {
		return doc
	}
	out := make([]byte, 0, len(doc)+len(KeyField)+len(key)+8)
	out = append(out, 0, 0, 0, 0)
	out = append(out, doc[4:len(doc)-1]...)
	out = append(out, 0x02)
	out = append(out, KeyField...)
	out = append(out, 0)
	n := len(key) + 1
	out = append(out, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	out = append(out, key...)
	out = append(out, 0, 0)
	l := len(out)
	out[0], out[1], out[2], out[3] = byte(l), byte(l>>8), byte(l>>16), byte(l>>24)
	return out
}

// storable checks a document against what both MongoDB and FerretDB store: no field
// name with a dot or a leading '$', no array directly inside an array, bounded depth.
func storable(doc bson.Raw, depth int) error {
	if depth > 32 {
		return fmt.Errorf("nested deeper than 32 levels")
	}
	elems, err := doc.Elements()
	if err != nil {
		return err
	}
	for _, e := range elems {
		k := e.Key()
		if strings.Contains(k, ".") || strings.HasPrefix(k, "$") || k == "" {
			return fmt.Errorf("field name %q", k)
		}
		if err := storableValue(e.Value(), depth, false); err != nil {
			return err
		}
	}
	return nil
}

func storableValue(v bson.RawValue, depth int, inArray bool) error {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return storable(v.Document(), depth+1)
	case bson.TypeArray:
		if inArray {
			return fmt.Errorf("an array inside an array")
		}
		vals, err := v.Array().Values()
		if err != nil {
			return err
		}
		for _, x := range vals {
			if err := storableValue(x, depth+1, true); err != nil {
				return err
			}
		}
	}
	return nil
}
