package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// Result statuses. Applied and rejected are final; pending means the server holds the
// mutation durably but had not decided it when it answered.
const (
	StatusApplied  = "applied"
	StatusRejected = "rejected"
	StatusPending  = "pending"
)

type pushRequest struct {
	ClientID      string     `json:"clientId"`
	SchemaVersion int        `json:"schemaVersion"`
	Mutations     []Mutation `json:"mutations"`
}

type result struct {
	ID      int64    `json:"id"`
	Status  string   `json:"status"`
	Error   *Error   `json:"error"`
	Changes []change `json:"changes"`
}

type pushResponse struct {
	LastMutationID int64    `json:"lastMutationId"`
	Results        []result `json:"results"`
}

type pullRequest struct {
	ClientID      string `json:"clientId"`
	SchemaVersion int    `json:"schemaVersion"`
	Cursor        string `json:"cursor"`
	Limit         int    `json:"limit"`
}

type change struct {
	Collection string          `json:"collection"`
	Op         string          `json:"op"`
	ID         string          `json:"id"`
	Version    int64           `json:"version"`
	Doc        json.RawMessage `json:"doc"`
}

type scopeStatus struct {
	Scope  string `json:"scope"`
	Status string `json:"status"`
}

type pullResponse struct {
	Cursor          string        `json:"cursor"`
	HasMore         bool          `json:"hasMore"`
	Reset           bool          `json:"reset"`
	LastMutationID  int64         `json:"lastMutationId"`
	Changes         []change      `json:"changes"`
	MutationResults []result      `json:"mutationResults"`
	Scopes          []scopeStatus `json:"scopes"`
	Progress        Progress      `json:"progress"`
}

// Sync runs one round: log in if there is no session, push the queue, then pull until
// the server has nothing more. It stops at the first error (offline, 5xx, a refused
// login …) and returns it with what was done so far; everything done so far is on
// disk, and everything not done is still queued for the next Sync. An app calls Sync
// when it comes online, on a poke, and after Enqueue.
func (c *Client) Sync(ctx context.Context) (Report, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var rep Report
	// Photos first: the mutations that name them follow.
	if err := c.uploadAttachments(ctx, &rep); err != nil {
		return rep, err
	}
	if err := c.push(ctx, &rep); err != nil {
		return rep, err
	}
	err := c.pull(ctx, &rep)
	return rep, err
}

// push sends the queue in batches of consecutive ids, lowest first.
//
// The queue may have holes: a mutation answered pending stays queued while later ones
// become final and leave. A batch is therefore a run of consecutive ids, since the
// server takes only consecutive ids in one push. Ids the server already has are
// re-sends: it answers with the stored outcome and applies nothing again, which is
// what makes "resend everything not known final" safe after a lost answer.
func (c *Client) push(ctx context.Context, rep *Report) error {
	from := int64(0) // the next batch starts at the first queued id ≥ from
	gaps := 0
	for {
		batch := c.nextBatch(from)
		if len(batch) == 0 {
			return nil
		}
		var resp pushResponse
		err := c.call(ctx, "/v1/sync/push", pushRequest{ClientID: c.opt.DeviceID, SchemaVersion: SchemaVersion, Mutations: batch}, &resp, rep)
		var ae *APIError
		switch {
		case err == nil:
		case errors.As(err, &ae) && ae.Status == http.StatusRequestEntityTooLarge:
			// Too many mutations or too many bytes for the server: halve and retry.
			// Nothing was stored. One mutation alone that is too large cannot be
			// skipped (ids have no gaps), so that is an error for people.
			if len(batch) == 1 {
				return fmt.Errorf("client: mutation %d alone is too large for the server: %w", batch[0].ID, err)
			}
			c.batch = len(batch) / 2
			continue
		case errors.As(err, &ae) && ae.Status == http.StatusConflict && ae.Body.Code == "mutation_gap":
			// The server has accepted up to N and wants N+1 next. We always push from
			// the queue's head, so this means ids before the batch were skipped: if
			// N+1 is still queued, resend from there (ids ≤ N that are queued are
			// re-sends and get their stored outcomes later). If it is not queued, it
			// was final here and the server forgot it: nothing to send can fix that.
			next := ae.LastMutationID + 1
			if gaps < 3 && next < batch[0].ID && c.isQueued(next) {
				gaps++
				from = next
				continue
			}
			return &GapError{ServerLast: ae.LastMutationID, QueueFirst: batch[0].ID}
		default:
			return err
		}
		rep.Pushed += len(batch)
		if err := c.settle(resp.Results, rep); err != nil {
			return err
		}
		from = batch[len(batch)-1].ID + 1
	}
}

// nextBatch returns up to c.batch queued mutations with consecutive ids, starting at
// the first queued id ≥ from.
func (c *Client) nextBatch(from int64) []Mutation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Mutation
	for _, m := range c.box.Queue {
		if m.ID < from {
			continue
		}
		if len(out) > 0 && (m.ID != out[len(out)-1].ID+1 || len(out) == c.batch) {
			break
		}
		out = append(out, m)
	}
	return out
}

func (c *Client) isQueued(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.box.Queue, func(m Mutation) bool { return m.ID == id })
}

// settle records outcomes: final ones leave the queue (rejected ones go to the
// rejected list), pending ones stay and are re-sent next time. Outcomes of ids no
// longer queued were settled before and are ignored, so hearing an outcome twice (from
// a push and from a pull) counts once.
func (c *Client) settle(results []result, rep *Report) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.box
	next.Queue = slices.Clone(c.box.Queue)
	next.Rejected = slices.Clone(c.box.Rejected)
	settled := false
	var changes []change
	for _, r := range results {
		i := slices.IndexFunc(next.Queue, func(m Mutation) bool { return m.ID == r.ID })
		if i < 0 {
			continue
		}
		switch r.Status {
		case StatusApplied:
			rep.Applied++
			changes = append(changes, r.Changes...)
		case StatusRejected:
			rep.Rejected++
			o := Outcome{Mutation: next.Queue[i], Status: r.Status, At: c.opt.Now()}
			if r.Error != nil {
				o.Error = *r.Error
			}
			next.Rejected = append(next.Rejected, o)
		default: // pending, or a status this client does not know: not final
			rep.Pending++
			continue
		}
		next.Queue = slices.Delete(next.Queue, i, i+1)
		settled = true
	}
	if !settled {
		return nil
	}
	if err := c.store.save(outboxFile, &next); err != nil {
		return err
	}
	c.box = next
	// An applied result may carry its changes with documents; applying them now shows
	// the effect before the next pull. Versions keep this from undoing newer data.
	applied := false
	for _, ch := range changes {
		if (ch.Op == "put" && len(ch.Doc) > 0) || ch.Op == "del" {
			applied = applyChange(c.rep, ch) || applied
		}
	}
	if applied {
		return c.saveReplica()
	}
	return nil
}

// pull fetches pages until hasMore is false. Each page is applied to the replica and
// saved together with its cursor, so an interruption at any point resumes after the
// last saved page.
func (c *Client) pull(ctx context.Context, rep *Report) error {
	resets := 0
	for {
		c.mu.Lock()
		cursor := c.rep.Cursor
		c.mu.Unlock()
		var p pullResponse
		err := c.call(ctx, "/v1/sync/pull", pullRequest{ClientID: c.opt.DeviceID, SchemaVersion: SchemaVersion, Cursor: cursor, Limit: c.opt.PullLimit}, &p, rep)
		if err != nil {
			return err
		}
		// Outcomes of mutations that were pending when pushed. Queued ids up to
		// p.LastMutationID without an outcome here are final on the server too, but
		// their outcome is not in this page (the server reports only outcomes after
		// the cursor's mark, and at most 100): they stay queued, and the next push
		// fetches their stored outcome. Dropping them could lose a rejection.
		if err := c.settle(p.MutationResults, rep); err != nil {
			return err
		}
		if p.Reset || c.lostScope(p.Scopes) {
			// Start over with an empty cursor; the queue is not touched. A removed
			// scope should purge only its own records, but changes do not say which
			// scope they belong to, so everything is dropped and pulled again.
			if resets++; resets > 3 {
				return errors.New("client: the server keeps asking for a reset")
			}
			rep.Resets++
			if err := c.dropReplica(); err != nil {
				return err
			}
			continue
		}
		if err := c.applyPage(&p, rep); err != nil {
			return err
		}
		if !p.HasMore {
			return nil
		}
	}
}

// lostScope reports whether a scope this replica holds is reported removed.
func (c *Client) lostScope(scopes []scopeStatus) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range scopes {
		if s.Status == "removed" && c.rep.Scopes[s.Scope] != "" {
			return true
		}
	}
	return false
}

// applyPage applies a page and its cursor to the replica and saves both, under the
// lock, so readers see the replica before or after the page, never half of it.
func (c *Client) applyPage(p *pullResponse, rep *Report) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range p.Changes {
		applyChange(c.rep, ch)
	}
	for _, s := range p.Scopes {
		if s.Status == "active" {
			c.rep.Scopes[s.Scope] = s.Status
		}
	}
	c.rep.Cursor = p.Cursor
	if err := c.saveReplica(); err != nil {
		return err
	}
	rep.Pages++
	rep.Pulled += len(p.Changes)
	rep.Progress = p.Progress
	return nil
}

// applyChange applies one change if it is not older than the stored record: put
// replaces the record, del removes it. It reports whether anything changed.
func applyChange(r *replica, ch change) bool {
	coll := r.Collections[ch.Collection]
	if cur, ok := coll[ch.ID]; ok && ch.Version < cur.Version {
		return false
	}
	switch ch.Op {
	case "put":
		if coll == nil {
			coll = map[string]record{}
			r.Collections[ch.Collection] = coll
		}
		coll[ch.ID] = record{Version: ch.Version, Doc: ch.Doc}
		return true
	case "del":
		if _, ok := coll[ch.ID]; ok {
			delete(coll, ch.ID)
			return true
		}
	}
	return false
}

// saveReplica writes the replica; c.mu is held. If the write fails, the in-memory
// replica goes back to what is on disk, so memory never runs ahead of the file (the
// page is pulled again next time).
func (c *Client) saveReplica() error {
	err := c.store.save(replicaFile, c.rep)
	if err != nil {
		if old, lerr := c.store.loadReplica(); lerr == nil {
			c.rep = old
		}
	}
	return err
}

// dropReplica empties the replica and its cursor, on disk first.
func (c *Client) dropReplica() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	empty := newReplica()
	if err := c.store.save(replicaFile, empty); err != nil {
		return err
	}
	c.rep = empty
	return nil
}
