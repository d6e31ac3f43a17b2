package command

import (
	"context"
	"errors"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Routes is the global table of which partition owns a record made by a client (its
// id is chosen on the handset, so two partitions could otherwise both create it). A
// record's partition is claimed when its creating command is routed, with a
// key-value create that only one claimant can win.
type Routes struct{ kv jetstream.KeyValue }

// NewRoutes opens the routes bucket.
func NewRoutes(ctx context.Context, js jetstream.JetStream, n Names) (*Routes, error) {
	kv, err := js.KeyValue(ctx, n.RoutesBucket())
	if err != nil {
		return nil, err
	}
	return &Routes{kv: kv}, nil
}

// Claim makes key the partition of coll/id unless another partition has it, and
// returns the partition that owns it.
func (r *Routes) Claim(ctx context.Context, coll, id, key string) (string, error) {
	if !ValidToken(id) {
		return key, nil // the command will be rejected for its id
	}
	_, err := r.kv.Create(ctx, coll+"."+id, []byte(key))
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", fault.Wrap(err, "claim record id")
	}
	owner, err := r.Owner(ctx, coll, id)
	if err != nil || owner == "" {
		return key, err
	}
	return owner, nil
}

// Owner returns the partition of coll/id, or "" when none claimed it.
func (r *Routes) Owner(ctx context.Context, coll, id string) (string, error) {
	if !ValidToken(id) {
		return "", nil
	}
	e, err := r.kv.Get(ctx, coll+"."+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fault.Wrap(err, "read record route")
	}
	return string(e.Value()), nil
}

// Writer returns the partition of coll/id: the claimed one, or for a record stored
// before ids were claimed (imported, seeded) the partition key stored with it; "" when
// neither is known.
func (r *Routes) Writer(ctx context.Context, db *mongo.Database, coll, id string) (string, error) {
	if key, err := r.Owner(ctx, coll, id); err != nil || key != "" {
		return key, err
	}
	var d struct {
		Key string `bson:"_k"`
	}
	if db.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d) == nil {
		return d.Key, nil
	}
	return "", nil
}
