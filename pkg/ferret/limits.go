package ferret

// Limits that keep FerretDB 1.24 on SQLite from deadlocking on its own connection
// pool. Its SQLite backend holds at most 100 connections per database, and an update
// command keeps the read of every one of its statements open — each on a connection
// of its own — until the whole command ends, while each statement's write takes one
// more (handler/msg_update.go: the closer of each statement is deferred to the end of
// the command). A bulk write of 100 replaces thus waits forever for a 101st
// connection, and fewer statements do the same once several such commands run at
// once: gridd stopped answering under the soak's load (found with gridlab soak; a
// pprof profile of FerretDB's open query iterators showed 100, all from updates).
//
// gridd therefore sends at most MaxStatements writes per command and keeps at most
// PoolSize operations in flight on FerretDB on SQLite: PoolSize × (MaxStatements + 1)
// stays below 100. MongoDB and FerretDB on PostgreSQL only see smaller batches.
const (
	MaxStatements = 10
	PoolSize      = 8
)

// Chunks cuts items into runs of at most MaxStatements.
func Chunks[T any](items []T) [][]T {
	var out [][]T
	for len(items) > 0 {
		n := min(len(items), MaxStatements)
		out = append(out, items[:n])
		items = items[n:]
	}
	return out
}
