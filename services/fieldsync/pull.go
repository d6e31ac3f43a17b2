package fieldsync

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
)

// PullRequest is the body of POST /v1/sync/pull.
type PullRequest struct {
	ClientID      string `json:"clientId"`
	SchemaVersion int    `json:"schemaVersion"`
	Cursor        string `json:"cursor"`
	Limit         int    `json:"limit"`
}

// Scope is one area a handset replicates.
type Scope struct {
	Scope  string `json:"scope"`
	Status string `json:"status"` // active | removed
}

// Progress tells a first sync how far it is.
type Progress struct {
	Remaining uint64 `json:"remaining"`
	Total     uint64 `json:"total"`
}

// PullResponse is the answer to a pull.
type PullResponse struct {
	Cursor          string            `json:"cursor"`
	HasMore         bool              `json:"hasMore"`
	Reset           bool              `json:"reset"`
	LastMutationID  int64             `json:"lastMutationId"`
	Changes         []json.RawMessage `json:"changes"`
	MutationResults []Result          `json:"mutationResults"`
	Scopes          []Scope           `json:"scopes"`
	Conflicts       []json.RawMessage `json:"conflicts"`
	Progress        Progress          `json:"progress"`
}

// cursor is what the opaque cursor carries.
type cursor struct {
	Seq      uint64 `json:"s"`           // last change-feed sequence delivered
	Total    uint64 `json:"t,omitempty"` // size of the sync in progress
	More     bool   `json:"h,omitempty"` // the page that made it had more after it
	Mutation int64  `json:"m,omitempty"` // last mutation id reported to the client
	Issued   int64  `json:"i"`           // unix seconds
	Scope    string `json:"sc,omitempty"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	if s == "" {
		return c, nil
	}
	if len(s) > 512 {
		return c, fault.New(fault.Invalid, "invalid_cursor", "the cursor is not one this server issued")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Issued == 0 {
		return c, fault.New(fault.Invalid, "invalid_cursor", "the cursor is not one this server issued")
	}
	return c, nil
}

// scopes derives, from the caller's home unit and roles, what it replicates.
func scopes(a org.Actor) (names []string, filters []string) {
	l, err := org.LevelOf(a.UnitID)
	if err != nil {
		return nil, nil
	}
	return []string{l.String() + ":" + a.UnitID}, []string{org.SubtreeFilter(a.UnitID)}
}

// Pull returns the next page of changes in the caller's scope after the cursor.
func (s *Service) Pull(ctx context.Context, a org.Actor, r *PullRequest) (*PullResponse, error) {
	if !auth.ValidDeviceID(r.ClientID) {
		return nil, fault.New(fault.Invalid, "invalid_request", "clientId is required: the deviceId used at login")
	}
	if r.Limit < 0 {
		return nil, fault.New(fault.Invalid, "invalid_request", "limit must not be negative")
	}
	if r.ClientID != a.DeviceID {
		return nil, fault.New(fault.Forbidden, "device_mismatch", "clientId must be the deviceId this token was issued to")
	}
	cur, err := decodeCursor(r.Cursor)
	if err != nil {
		return nil, err
	}
	now := s.opt.Now()
	// The scope follows the user's current home unit, not the one in its token.
	unitAt, err := s.unitsOf(ctx, a)
	if err != nil {
		return nil, err
	}
	a.UnitID = unitAt(now)
	scopeNames, filters := scopes(a)
	resp := &PullResponse{Changes: []json.RawMessage{}, MutationResults: []Result{}, Conflicts: []json.RawMessage{}, Scopes: []Scope{}}
	for _, n := range scopeNames {
		resp.Scopes = append(resp.Scopes, Scope{Scope: n, Status: "active"})
	}
	if r.SchemaVersion != SchemaVersion {
		// A version we no longer serve: never send data in the wrong shape.
		resp.Reset = true
		return resp, nil
	}
	if r.Cursor != "" && now.Sub(time.Unix(cur.Issued, 0)) > s.opt.Horizon {
		// Deletes older than the horizon are gone: start over.
		resp.Reset = true
		return resp, nil
	}
	// Read the mutation high-water mark before the changes: everything up to it is
	// already on the feed, at or before the stream's current end.
	done, err := s.done(ctx, r.ClientID, nil)
	if err != nil {
		return nil, err
	}
	limit := r.Limit
	if limit == 0 || limit > s.opt.PullLimit {
		limit = s.opt.PullLimit
	}
	next := cur
	next.Issued = now.Unix()
	scopeKey := strings.Join(scopeNames, ",")
	if r.Cursor != "" && cur.Scope != scopeKey {
		// The caller's scope changed (moved to another unit): stream the new scope from
		// the start and tell the client which old scopes to purge. Records in both
		// arrive again; the client keeps the newer version.
		for _, old := range strings.Split(cur.Scope, ",") {
			if old != "" && !slices.Contains(scopeNames, old) {
				resp.Scopes = append(resp.Scopes, Scope{Scope: old, Status: "removed"})
			}
		}
		cur.Seq, cur.Total, cur.More = 0, 0, false
	}
	next.Scope = scopeKey
	if len(filters) > 0 {
		// Records of the user itself (conflicts of its offline edits) travel on its
		// own path; only the place scopes above are reported as scopes.
		filters = append(filters, org.UserPath(a.UserID))
		changes, last, pending, err := s.read(ctx, filters, cur.Seq, limit)
		if err != nil {
			return nil, err
		}
		resp.Changes, resp.Conflicts = splitConflicts(changes)
		if last > 0 {
			next.Seq = last
		}
		remaining := pending - uint64(len(changes))
		total := remaining + uint64(len(changes))
		if cur.More && cur.Total >= total {
			total = cur.Total
		}
		resp.HasMore = remaining > 0
		resp.Progress = Progress{Remaining: remaining, Total: total}
		next.Total, next.More = total, resp.HasMore
	}
	// Only a page that reaches the end of the feed surely holds the effects of every
	// mutation up to done; earlier pages keep reporting what the client already has.
	reported := cur.Mutation
	if !resp.HasMore {
		reported = done
	}
	resp.LastMutationID, next.Mutation = reported, reported
	from := cur.Mutation
	if reported-from > 100 {
		from = reported - 100
	}
	for id := from + 1; id <= reported; id++ {
		o, err := s.outcome(ctx, r.ClientID, id)
		if err != nil {
			return nil, err
		}
		if o != nil {
			o.Changes = nil
			resp.MutationResults = append(resp.MutationResults, *o)
		}
	}
	resp.Cursor = encodeCursor(next)
	return resp, nil
}

// read fetches up to limit change-feed records matching filters after seq. pending is
// how many matched when reading began.
func (s *Service) read(ctx context.Context, filters []string, after uint64, limit int) ([]json.RawMessage, uint64, uint64, error) {
	subj := make([]string, len(filters))
	for i, f := range filters {
		subj[i] = s.names.ChgFilter(f)
	}
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 30 * time.Second,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if len(subj) == 1 {
		cfg.FilterSubject = subj[0]
	} else {
		cfg.FilterSubjects = subj
	}
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	cons, err := s.js.CreateConsumer(ctx, s.names.ChgStream(), cfg)
	if err != nil {
		return nil, 0, 0, fault.Wrap(err, "open change feed")
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.js.DeleteConsumer(dctx, s.names.ChgStream(), name)
	}()
	pending := cons.CachedInfo().NumPending
	n := min(uint64(limit), pending)
	out := make([]json.RawMessage, 0, n)
	var last uint64
	for uint64(len(out)) < n {
		batch, err := cons.Fetch(int(n)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, 0, 0, fault.Wrap(err, "read change feed")
		}
		got := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			last = md.Sequence.Stream
			out = append(out, json.RawMessage(m.Data()))
			got++
		}
		if err := batch.Error(); err != nil && got == 0 {
			return nil, 0, 0, fault.Wrap(err, "read change feed")
		}
		if got == 0 {
			break // records counted as pending expired meanwhile (tombstones)
		}
	}
	if uint64(len(out)) < n {
		pending = uint64(len(out))
	}
	return out, last, pending, nil
}

// splitConflicts moves conflict records out of the changes into the response's
// conflicts list.
func splitConflicts(changes []json.RawMessage) (rest, conflicts []json.RawMessage) {
	rest, conflicts = changes[:0:0], []json.RawMessage{}
	for _, c := range changes {
		var head struct {
			Collection string          `json:"collection"`
			Op         string          `json:"op"`
			Doc        json.RawMessage `json:"doc"`
		}
		if json.Unmarshal(c, &head) == nil && head.Collection == "conflicts" {
			if head.Op == "put" {
				conflicts = append(conflicts, head.Doc)
			}
			continue
		}
		rest = append(rest, c)
	}
	return rest, conflicts
}
