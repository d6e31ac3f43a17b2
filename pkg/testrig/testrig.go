// Package testrig gives every test its own database and stream prefix on embedded
// servers shared by the whole test binary: one FerretDB (SQLite in a temp dir) and one
// NATS server with JetStream, started on first use. Tests stay fast (no server start
// per test) and isolated (no shared names).
package testrig

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/pkg/ferret"
	"github.com/gridkeeper/gridkeeper/pkg/natsd"
	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Servers are the shared embedded servers.
type Servers struct {
	Dir      string
	MongoURI string
	NATSURL  string
	ferret   *ferret.Server
	nats     *natsd.Server
}

var (
	once    sync.Once
	shared  *Servers
	initErr error
)

// Shared starts the shared servers on first use.
func Shared(t testing.TB) *Servers {
	t.Helper()
	once.Do(func() {
		dir, err := os.MkdirTemp("", "gridkeeper-rig-")
		if err != nil {
			initErr = err
			return
		}
		s := &Servers{Dir: dir}
		if s.ferret, err = ferret.Start(ferret.Options{Dir: dir + "/ferretdb", PostgreSQLURL: os.Getenv("GRID_TEST_POSTGRESQL_URL")}); err != nil {
			initErr = err
			return
		}
		s.MongoURI = s.ferret.URI()
		if s.nats, err = natsd.Start(natsd.Options{StoreDir: dir + "/jetstream", Listen: "127.0.0.1:-1", ServerName: "rig"}); err != nil {
			initErr = err
			return
		}
		s.NATSURL = s.nats.ClientURL()
		shared = s
	})
	if initErr != nil {
		t.Fatalf("testrig: %v", initErr)
	}
	return shared
}

// Main runs the tests and then stops the shared servers and removes their files. Call
// it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.nats.Stop()
		shared.ferret.Stop()
		_ = os.RemoveAll(shared.Dir)
	}
	return code
}

// Env is one test's private corner of the shared servers.
type Env struct {
	*Servers
	// DB is a database name no other test uses; Prefix likewise for streams.
	DB     string
	Prefix string
}

// New returns a fresh database name and stream prefix for t.
func New(t testing.TB) Env {
	t.Helper()
	s := Shared(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, t.Name())
	if len(name) > 20 {
		name = name[:20]
	}
	return Env{Servers: s, DB: "t_" + name + "_" + id, Prefix: "T" + id}
}

// Mongo connects to the shared FerretDB and returns the test's database.
func (e Env) Mongo(t testing.TB) *mongo.Database {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(e.MongoURI))
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(e.DB)
}

// NATS connects to the shared NATS server.
func (e Env) NATS(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(e.NATSURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// String describes the env for failure messages.
func (e Env) String() string { return fmt.Sprintf("db=%s prefix=%s", e.DB, e.Prefix) }
