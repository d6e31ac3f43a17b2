package command

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/nats-io/nats.go/jetstream"
)

// Feed reads single records from the change feed: the latest version of a record is
// one direct get on the stream, with no database query (which on FerretDB/SQLite
// would scan the collection).
type Feed struct {
	names  Names
	stream jetstream.Stream
}

// NewFeed opens the change feed for reads.
func NewFeed(ctx context.Context, js jetstream.JetStream, names Names) (*Feed, error) {
	s, err := js.Stream(ctx, names.ChgStream())
	if err != nil {
		return nil, err
	}
	return &Feed{names: names, stream: s}, nil
}

// Latest returns the newest change of a record and the scope path it was published
// on, or nil when the feed has no live version of it (never written, or deleted).
func (f *Feed) Latest(ctx context.Context, coll, id string) (*Change, string, error) {
	if !ValidToken(id) {
		return nil, "", nil
	}
	subj := f.names.Prefix + ".chg.*.*.*.*.*." + coll + "." + id
	m, err := f.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fault.Wrap(err, "read change feed")
	}
	var c Change
	if err := json.Unmarshal(m.Data, &c); err != nil {
		return nil, "", fault.Wrap(err, "decode change")
	}
	if c.Op != "put" {
		return nil, "", nil
	}
	// <prefix>.chg.<5 path tokens>.<coll>.<id>
	tokens := strings.Split(m.Subject, ".")
	path := ""
	if len(tokens) == 9 {
		path = strings.Join(tokens[2:7], ".")
	}
	return &c, path, nil
}
