package ferret_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/ferret"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// replaces is n whole-document replaces by _id of docs id-000…, as the appliers and
// the statistics projector write.
func replaces(n, round int) []mongo.WriteModel {
	var ms []mongo.WriteModel
	for i := range n {
		id := fmt.Sprintf("id-%03d", i)
		ms = append(ms, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).
			SetReplacement(bson.D{{Key: "_id", Value: id}, {Key: "round", Value: round}}).SetUpsert(true))
	}
	return ms
}

func startWithDocs(t *testing.T, n int, pool uint64) *mongo.Collection {
	t.Helper()
	srv, err := ferret.Start(ferret.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	mc, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetMaxPoolSize(pool))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	coll := mc.Database("gk").Collection("c")
	var docs []any
	for i := range n {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("id-%03d", i)}, {Key: "round", Value: 0}})
	}
	if _, err := coll.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	return coll
}

// The premise of the limits: one bulk write of more than 99 replaces never finishes on
// FerretDB 1.24 on SQLite (every statement's read holds one of 100 connections until
// the command ends). If this starts passing, FerretDB was fixed and the limits can go.
func TestFerretDeadlocksOnALargeUpdateCommand(t *testing.T) {
	coll := startWithDocs(t, 120, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := coll.BulkWrite(ctx, replaces(120, 1), options.BulkWrite().SetOrdered(false))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("120 replaces in one command: %v, expected them to hang (FerretDB fixed? then drop ferret.MaxStatements)", err)
	}
}

// Within the limits — PoolSize writers at once, each sending its replaces in commands
// of MaxStatements — the same work finishes, again and again.
func TestLimitsKeepLargeWritesFlowing(t *testing.T) {
	coll := startWithDocs(t, 120, ferret.PoolSize)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*ferret.PoolSize)
	for w := range 2 * ferret.PoolSize { // more writers than connections: the rest queue in the driver
		wg.Go(func() {
			for _, chunk := range ferret.Chunks(replaces(120, w+1)) {
				if _, err := coll.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{{Key: "round", Value: bson.D{{Key: "$gt", Value: 0}}}}); err != nil || n != 120 {
		t.Fatalf("replaced: %d %v", n, err)
	}
}

func TestChunks(t *testing.T) {
	if got := ferret.Chunks(make([]int, 25)); len(got) != 3 || len(got[0]) != ferret.MaxStatements || len(got[2]) != 5 {
		t.Errorf("25 items: %d chunks", len(got))
	}
	if got := ferret.Chunks([]int(nil)); len(got) != 0 {
		t.Errorf("no items: %d chunks", len(got))
	}
}
