package command_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/pkg/testrig"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestMain(m *testing.M) { os.Exit(testrig.Main(m)) }

type note struct {
	ID   string `bson:"_id"`
	Text string `bson:"text"`
	N    int    `bson:"n"`
}

// rig starts streams and one applier per partition with a registry of test commands.
func rig(t *testing.T, partitions int) (*command.Bus, func(coll, id string) *note) {
	t.Helper()
	env := testrig.New(t)
	db := env.Mongo(t)
	nc := env.NATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := command.Names{Prefix: env.Prefix, Partitions: partitions}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := command.EnsureStreams(ctx, js, names, command.StreamOptions{Horizon: 720 * time.Hour, SessionTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	reg := command.NewRegistry()
	type args struct {
		ID, Text string
		Dotted   bool
	}
	reg.Register("note.add", command.Handler{
		Keys: func(c *command.Command) []command.Key {
			var a args
			_ = json.Unmarshal(c.Args, &a)
			return []command.Key{{Coll: "notes", ID: a.ID}}
		},
		Apply: func(tx *command.Tx, c *command.Command) error {
			var a args
			_ = json.Unmarshal(c.Args, &a)
			var n note
			if _, err := tx.Get("notes", a.ID, &n); err != nil {
				return err
			}
			n.ID, n.Text, n.N = a.ID, a.Text, n.N+1
			if a.Text == "" {
				return fault.New(fault.Invalid, "invalid_args", "text required")
			}
			var doc any = n
			if a.Dotted {
				// FerretDB refuses keys with dots: this command can never be stored.
				doc = bson.D{{Key: "_id", Value: a.ID}, {Key: "a.b", Value: 1}}
			}
			return tx.Put(command.Record{Coll: "notes", ID: a.ID, Version: int64(n.N), Path: "1.2.3.4.5", Doc: doc, Wire: n})
		},
	})
	for p := 0; p < partitions; p++ {
		a := command.NewApplier(js, db, names, reg, command.ApplierOptions{Partition: p, Horizon: time.Hour})
		go func() { _ = a.Run(ctx) }()
	}
	get := func(coll, id string) *note {
		var n note
		if err := db.Collection(coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&n); err != nil {
			return nil
		}
		return &n
	}
	return command.NewBus(nc, js, names), get
}

// A command whose documents the database refuses is rejected on its own; the commands
// around it in the same batch are applied, and the partition goes on.
func TestUnstorableCommandDoesNotBlockItsPartition(t *testing.T) {
	bus, get := rig(t, 1)
	sys := org.SystemActor("test")
	reqs := []command.Request{
		{Name: "note.add", Key: "k", Actor: sys, Args: map[string]any{"ID": "a", "Text": "first"}},
		{Name: "note.add", Key: "k", Actor: sys, Args: map[string]any{"ID": "b", "Text": "bad", "Dotted": true}},
		{Name: "note.add", Key: "k", Actor: sys, Args: map[string]any{"ID": "c", "Text": ""}},
		{Name: "note.add", Key: "k", Actor: sys, Args: map[string]any{"ID": "a", "Text": "second"}},
	}
	outs, err := bus.DoAll(context.Background(), reqs, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"applied", "rejected", "rejected", "applied"}
	for i, o := range outs {
		if o.Status != want[i] {
			t.Errorf("command %d: %s %+v, want %s", i, o.Status, o.Error, want[i])
		}
	}
	if outs[1].Error == nil || outs[1].Error.Code != "unstorable" {
		t.Errorf("unstorable command: %+v", outs[1].Error)
	}
	if n := get("notes", "a"); n == nil || n.N != 2 || n.Text != "second" {
		t.Errorf("note a: %+v, want applied twice", n)
	}
	if get("notes", "b") != nil || get("notes", "c") != nil {
		t.Error("rejected commands left documents behind")
	}
	// The partition still works.
	o, err := bus.Do(context.Background(), "", "note.add", "k", sys, map[string]any{"ID": "d", "Text": "after"}, 10*time.Second)
	if err != nil || o.Status != "applied" {
		t.Fatalf("after the bad command: %v %+v", err, o)
	}
}

// A command id applies once, however often it is published: a repeat within the
// duplicate window is dropped by JetStream and answered with the stored outcome.
func TestRepeatedCommandIDsApplyOnce(t *testing.T) {
	bus, get := rig(t, 2)
	sys := org.SystemActor("test")
	var reqs []command.Request
	for _, id := range []string{"one", "two", "three"} {
		reqs = append(reqs, command.Request{ID: id, Name: "note.add", Key: "k", Actor: sys, Args: map[string]any{"ID": "n", "Text": id}})
	}
	for round := 0; round < 3; round++ {
		outs, err := bus.DoAll(context.Background(), reqs, 10*time.Second)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, o := range outs {
			if o.Status != "applied" || o.Changes[0].Version != int64(i+1) {
				t.Errorf("round %d command %d: %+v", round, i, o)
			}
		}
	}
	if n := get("notes", "n"); n == nil || n.N != 3 || n.Text != "three" {
		t.Errorf("note: %+v, want applied 3 times in order", n)
	}
}

func TestStampKeyKeepsDocumentsValid(t *testing.T) {
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: "x"}, {Key: "a", Value: 1}})
	out := command.StampKey(raw, "110105001001")
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	if k, _ := out.Lookup(command.KeyField).StringValueOK(); k != "110105001001" {
		t.Errorf("stamped key: %q", k)
	}
	if again := command.StampKey(out, "other"); len(again) != len(out) {
		t.Error("a stamped document is stamped again")
	}
}
