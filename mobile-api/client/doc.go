// Package client is the reference handset client of the field sync protocol v1
// (SYNC-PROTOCOL.md, schemas/openapi.yaml): the Go code a mobile team ports to Kotlin or
// Swift. It owns one device's side of the contract:
//
//   - the persistent offline queue of mutations, numbered 1, 2, 3 … per device, never
//     reused, surviving restarts (Enqueue works with no network at all);
//   - the session: login, rotating refresh tokens, and re-login when refreshing fails,
//     without ever dropping a queued mutation;
//   - push: batches of consecutive ids, resent until their outcome is final (applied or
//     rejected), halved on 413, resumed from the server's mark on a mutation_gap;
//   - pull: pages applied atomically to a local replica together with their cursor, so
//     an interrupted first sync resumes at the page where it stopped; reset and
//     scope removal drop replicated data but never the queue;
//   - the list of rejected mutations the UI shows to the user.
//
// # Files
//
// Everything lives in one directory (Options.StateDir), as three JSON files, each
// replaced atomically (write a temp file, fsync, rename, fsync the directory):
//
//	outbox.json   device id, last mutation id, queue, rejected outcomes
//	replica.json  cursor, scopes and records (collection → id → {version, doc})
//	auth.json     login, access and refresh token, the user
//
// A process killed at any moment leaves either the old or the new version of each
// file, plus perhaps a stray temp file, which Open removes. Writes that span files are
// ordered so a crash between them only causes a harmless repeat: the outbox is written
// before the replica, so a page whose mutation outcomes were recorded but whose data was
// not is simply pulled again. A phone app would keep the same three things in SQLite
// (one transaction per page) and the tokens in the Keystore/Keychain; rewriting whole
// files is what keeps this reference short, not a recommendation for large replicas.
//
// One Client per StateDir at a time. A StateDir belongs to one device id: Open refuses
// a different Options.DeviceID, because mutation ids count per device and a queue
// numbered for one device would be a gap for another. Use a device id per app install
// (Open makes one when Options.DeviceID is empty), never a hardware id: the server
// answers a re-sent id with the outcome it stored for that id, so a reinstalled app
// restarting at id 1 under an old device id would see its new mutations answered with
// old outcomes.
//
// # What the replica is
//
// Replica returns the server's view only. An app shows queued mutations on top of it
// (optimistic state) until they leave the queue; a mutation leaves the queue once its
// outcome is final, which the server reports after its effects are in the change feed,
// so the next pull brings them.
//
// # Attachments
//
// AddAttachment copies a photo into the state directory and returns its SHA-256, the
// name mutations use (args.photos). Sync uploads queued attachments before pushing:
// HEAD tells how much the server holds, PATCH chunks of ChunkSize carry the rest, so
// an upload broken off resumes where it stopped.
//
// # Not here
//
// Pokes (/v1/sync/events, push messages) are left to the app: on a poke it calls Sync.
package client
