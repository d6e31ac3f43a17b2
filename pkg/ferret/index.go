package ferret

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the driver FerretDB's SQLite backend uses
)

// IndexIDs makes lookups by _id use an index on FerretDB's SQLite backend.
//
// FerretDB v1.24 answers {_id: value} — every update, replace and delete by _id — with
// `WHERE _ferretdb_sjson->'$._id' = ?`, but the unique index it creates for _id is on
// a differently written expression, so SQLite scans the whole table: 25–35 ms per
// update at a few hundred incidents, growing with the table. An expression index
// written exactly as the query makes those lookups indexed. FerretDB does not know of
// it and does not need to: it only speeds up its own queries, and it goes away with
// the table. Call it after the collections exist, for the database db in the
// server's directory dir; colls nil means every collection of db.
func IndexIDs(ctx context.Context, dir, db string, colls []string) error {
	path := filepath.Join(dir, db+".sqlite")
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("ferret: open %s: %w", path, err)
	}
	defer conn.Close()
	want := map[string]bool{}
	for _, c := range colls {
		want[c] = true
	}
	rows, err := conn.QueryContext(ctx, `SELECT name, table_name FROM "_ferretdb_collections"`)
	if err != nil {
		return fmt.Errorf("ferret: list collections: %w", err)
	}
	tables := map[string]string{}
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			rows.Close()
			return fmt.Errorf("ferret: list collections: %w", err)
		}
		if colls == nil || want[name] {
			tables[name] = table
		}
	}
	rows.Close()
	for name, table := range tables {
		if strings.ContainsRune(table, '"') {
			return fmt.Errorf("ferret: unexpected table name %q", table)
		}
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS "%s_gk_id" ON "%s" (_ferretdb_sjson->'$._id')`, table, table)
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("ferret: index %s: %w", name, err)
		}
	}
	return nil
}
