package ferret_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/pkg/ferret"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// After IndexIDs, SQLite answers FerretDB's lookup by _id — the query behind every
// update, replace and delete by _id — from an index instead of scanning the table,
// and updates through the driver still work.
func TestIndexIDs(t *testing.T) {
	dir := t.TempDir()
	srv, err := ferret.Start(ferret.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx := context.Background()
	mc, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(ctx)
	coll := mc.Database("gk").Collection("incidents")
	var docs []any
	for i := 0; i < 500; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("id-%03d", i)}, {Key: "n", Value: i}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	plan := func() string {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "gk.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var table string
		if err := db.QueryRow(`SELECT table_name FROM "_ferretdb_collections" WHERE name = 'incidents'`).Scan(&table); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(fmt.Sprintf(`EXPLAIN QUERY PLAN UPDATE %q SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->'$._id' = ?`, table), "{}", `"id-001"`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			_ = rows.Scan(&id, &parent, &notused, &detail)
			out = append(out, detail)
		}
		return strings.Join(out, "; ")
	}
	if p := plan(); !strings.Contains(p, "SCAN") {
		t.Fatalf("before: expected a table scan, got %q", p)
	}
	if err := ferret.IndexIDs(ctx, dir, "gk", []string{"incidents", "absent"}); err != nil {
		t.Fatal(err)
	}
	if err := ferret.IndexIDs(ctx, dir, "gk", []string{"incidents"}); err != nil {
		t.Fatalf("a second time: %v", err)
	}
	if p := plan(); !strings.Contains(p, "USING INDEX") || !strings.Contains(p, "_gk_id") {
		t.Fatalf("after: the lookup does not use the index: %q", p)
	}
	if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "id-007"}}, bson.D{{Key: "n", Value: -7}}); err != nil {
		t.Fatal(err)
	}
	var got struct{ N int }
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "id-007"}}).Decode(&got); err != nil || got.N != -7 {
		t.Fatalf("replace through the index: %v %+v", err, got)
	}
	if n, _ := coll.CountDocuments(ctx, bson.D{}); n != 500 {
		t.Fatalf("documents: %d", n)
	}
}
