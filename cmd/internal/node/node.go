package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gridkeeper/gridkeeper/mobile-api"
	"github.com/gridkeeper/gridkeeper/pkg/ferret"
	"github.com/gridkeeper/gridkeeper/pkg/natsd"
	"github.com/gridkeeper/gridkeeper/pkg/seal"
	"github.com/gridkeeper/gridkeeper/schemas"
	"github.com/gridkeeper/gridkeeper/services/attachment"
	"github.com/gridkeeper/gridkeeper/services/auth"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/complaint"
	"github.com/gridkeeper/gridkeeper/services/demo"
	"github.com/gridkeeper/gridkeeper/services/device"
	"github.com/gridkeeper/gridkeeper/services/directory"
	"github.com/gridkeeper/gridkeeper/services/fieldsync"
	"github.com/gridkeeper/gridkeeper/services/household"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"github.com/gridkeeper/gridkeeper/services/notify"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/gridkeeper/gridkeeper/services/stats"
	"github.com/gridkeeper/gridkeeper/services/volunteer"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Options are the parts a caller may hand in instead of having them built from Config.
type Options struct {
	Logger *slog.Logger
	// Hooks are passed to every applier (crash tests).
	Hooks command.Hooks
	// Now replaces the clock of auth and sync (tests).
	Now func() time.Time
	// Sender replaces the push sender chosen from Config (tests: FCM against a fake).
	Sender notify.Sender
	// Push tunes the notification pusher (tests: a short AckWait); Logger and Now are
	// the node's.
	Push notify.PusherOptions
	// Stats tunes the statistics projector (tests: a short AckWait, a crash hook).
	Stats StatsOptions
}

// StatsOptions tune the statistics projector.
type StatsOptions struct {
	AckWait time.Duration
	Hook    func(stage string)
}

// Node is one running gridd.
type Node struct {
	Cfg   Config
	Log   *slog.Logger
	Names command.Names

	ferret *ferret.Server
	nats   *natsd.Server
	Mongo  *mongo.Client
	DB     *mongo.Database
	NC     *nats.Conn
	JS     jetstream.JetStream

	Registry  *command.Registry
	Bus       *command.Bus
	Auth      *auth.Service
	Sync      *fieldsync.Service
	Incidents *incident.Service
	Config    *incident.Config
	Directory *directory.Service
	Devices   *device.Service
	Appliers  []*command.Applier
	Poker     *notify.Poker
	Pusher    *notify.Pusher
	Prefs     *notify.Prefs
	// Households reads the ledgers (visits due, personal data, the access log).
	Households *household.Service
	// Points keeps volunteers, the love-points ledger and the love supermarket.
	Points *volunteer.Points
	// Projector keeps the dashboard's counters (runs with the applier role); Stats
	// reads them.
	Projector *stats.Projector
	Stats     *stats.Service
	App       *fiber.App
	Metrics   *prometheus.Registry

	cancel   context.CancelFunc
	httpDone chan struct{} // closed at Stop: ends event streams before the HTTP shutdown waits for them
	wg       sync.WaitGroup
	applyErr chan error
	stopOnce sync.Once
}

// Start builds and starts everything Config asks for. On error, whatever started is
// stopped again.
func Start(ctx context.Context, cfg Config, o Options) (n *Node, err error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	n = &Node{Cfg: cfg, Log: log, Names: command.Names{Prefix: cfg.Prefix, Partitions: cfg.Partitions},
		applyErr: make(chan error, cfg.Partitions), httpDone: make(chan struct{})}
	self := n // the error returns below set n to nil before this runs
	defer func() {
		if err != nil {
			self.Stop(context.Background())
			n = nil
		}
	}()
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := n.openDatabase(ctx); err != nil {
		return nil, err
	}
	if err := n.openBroker(ctx); err != nil {
		return nil, err
	}
	if err := command.EnsureStreams(ctx, n.JS, n.Names, command.StreamOptions{Horizon: cfg.TombstoneHoriz, SessionTTL: cfg.RefreshTTL}); err != nil {
		return nil, err
	}
	if err := n.buildServices(ctx, runCtx, o); err != nil {
		return nil, err
	}
	if err := n.indexIDs(ctx); err != nil {
		return nil, err
	}
	if cfg.HasRole("applier") {
		for p := 0; p < cfg.Partitions; p++ {
			a := command.NewApplier(n.JS, n.DB, n.Names, n.Registry, command.ApplierOptions{
				Partition: p, Batch: cfg.ApplyBatch, Horizon: cfg.TombstoneHoriz, Logger: log, Hooks: o.Hooks,
				Preload: cfg.Preload == "on" || (cfg.Preload == "auto" && cfg.MongoURI == ""),
			})
			n.Appliers = append(n.Appliers, a)
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				if err := a.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
					log.Error("applier stopped", "partition", p, "err", err)
					n.applyErr <- err
				}
			}()
		}
		n.Metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gridd_commands_applied_total", Help: "Commands applied by this instance's appliers.",
		}, func() float64 {
			var t int64
			for _, a := range n.Appliers {
				t += a.Applied()
			}
			return float64(t)
		}))
	}
	if cfg.HasRole("applier") {
		router := &incident.Router{JS: n.JS, Names: n.Names, Bus: n.Bus, Svc: n.Incidents, Log: log}
		if err := router.Run(runCtx); err != nil {
			return nil, err
		}
		timers := &incident.Timers{JS: n.JS, Names: n.Names, Bus: n.Bus, Svc: n.Incidents, Log: log}
		if err := timers.Run(runCtx); err != nil {
			return nil, err
		}
		filer := &incident.Filer{JS: n.JS, DB: n.DB, Names: n.Names, Svc: n.Incidents, Log: log, Now: o.Now}
		if err := filer.Run(runCtx); err != nil {
			return nil, err
		}
		if err := n.Households.RunReminders(runCtx, o.Now, log); err != nil {
			return nil, err
		}
		if err := n.Projector.Run(runCtx); err != nil {
			return nil, err
		}
		n.Metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gridd_stats_changes_projected_total", Help: "Incident changes counted by the statistics projector.",
		}, func() float64 { return float64(n.Projector.Projected()) }))
	}
	if cfg.HasRole("notifier") {
		if err := n.startPoker(ctx, runCtx, o); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// startPoker starts the sync poker with the FCM sender, or the local outbox when no
// FCM credentials are configured.
func (n *Node) startPoker(ctx, runCtx context.Context, o Options) error {
	var sender notify.Sender = notify.Local{Log: n.Log}
	switch {
	case o.Sender != nil:
		sender = o.Sender
	case n.Cfg.FCMCredentials != "":
		fcm, err := notify.NewFCM(ctx, notify.FCMConfig{CredentialsFile: n.Cfg.FCMCredentials,
			ProjectID: n.Cfg.FCMProject, Endpoint: n.Cfg.FCMEndpoint})
		if err != nil {
			return err
		}
		sender = fcm
	}
	devices, err := n.JS.KeyValue(ctx, n.Names.DevicesBucket())
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	n.Poker = notify.NewPoker(n.NC, n.Names, devices, sender, notify.PokerOptions{
		Interval: n.Cfg.PokeInterval, Logger: n.Log,
		HomeUnit: func(ctx context.Context, login string) (string, error) {
			u, err := n.Directory.User(ctx, login)
			if err != nil || u == nil {
				return "", err
			}
			return u.UnitID, nil
		},
	})
	if err := n.Poker.Run(runCtx); err != nil {
		return err
	}
	po := o.Push
	po.Logger, po.Now = n.Log, o.Now
	n.Pusher = notify.NewPusher(n.JS, n.Names, n.Poker, sender, n.Prefs, po)
	if err := n.Pusher.Run(runCtx); err != nil {
		return err
	}
	notifier := &notify.Notifier{JS: n.JS, Names: n.Names, Bus: n.Bus, Dir: n.Directory, Log: n.Log,
		Category: func(code string) notify.Text {
			c, _ := n.Incidents.Catalog().Find(code)
			return notify.Text{Zh: c.Names.Zh, En: c.Names.En}
		}}
	if err := notifier.Run(runCtx); err != nil {
		return err
	}
	n.Metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gridd_sync_pokes_total", Help: "Sync pokes handed to the push sender.",
	}, func() float64 { return float64(n.Poker.Sent.Load()) }))
	n.Metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gridd_notification_pushes_total", Help: "Notification pushes the push sender accepted.",
	}, func() float64 { return float64(n.Pusher.Sent.Load()) }))
	return nil
}

func (n *Node) openDatabase(ctx context.Context) error {
	uri := n.Cfg.MongoURI
	if uri == "" {
		f, err := ferret.Start(ferret.Options{Dir: filepath.Join(n.Cfg.DataDir, "ferretdb"), PostgreSQLURL: n.Cfg.PostgreURL})
		if err != nil {
			return err
		}
		n.ferret = f
		uri = f.URI()
	}
	opts := options.Client().ApplyURI(uri).SetAppName("gridd").SetTimeout(30 * time.Second)
	if n.ferret != nil && n.Cfg.PostgreURL == "" {
		// Few operations at once on FerretDB on SQLite, or it deadlocks on its own
		// connection pool (see ferret.PoolSize); the rest queue in the driver.
		opts.SetMaxPoolSize(ferret.PoolSize)
	}
	mc, err := mongo.Connect(opts)
	if err != nil {
		return fmt.Errorf("mongo: %w", err)
	}
	n.Mongo = mc
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := mc.Ping(pctx, nil); err != nil {
		return fmt.Errorf("mongo: %w", err)
	}
	n.DB = mc.Database(n.Cfg.MongoDB)
	return nil
}

// indexIDs gives the embedded FerretDB on SQLite an index for lookups by _id on every
// collection the write path updates (see ferret.IndexIDs); the collections are created
// first, so the index is there before the first update.
func (n *Node) indexIDs(ctx context.Context) error {
	if n.ferret == nil || n.Cfg.PostgreURL != "" {
		return nil
	}
	colls := append(n.Registry.Collections(), stats.Coll, stats.ItemColl, stats.JournalColl)
	existing, err := n.DB.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for _, c := range colls {
		if !slices.Contains(existing, c) {
			if err := n.DB.CreateCollection(ctx, c); err != nil {
				return fmt.Errorf("create %s: %w", c, err)
			}
		}
	}
	return ferret.IndexIDs(ctx, filepath.Join(n.Cfg.DataDir, "ferretdb"), n.Cfg.MongoDB, colls)
}

func (n *Node) openBroker(ctx context.Context) error {
	var nc *nats.Conn
	var err error
	opts := []nats.Option{nats.Name("gridd"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if n.Cfg.NATSURL == "" {
		n.nats, err = natsd.Start(natsd.Options{StoreDir: filepath.Join(n.Cfg.DataDir, "jetstream"), Listen: n.Cfg.NATSListen})
		if err != nil {
			return err
		}
		nc, err = n.nats.Connect("gridd", opts...)
	} else {
		nc, err = nats.Connect(n.Cfg.NATSURL, opts...)
	}
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	n.NC = nc
	n.JS, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

func (n *Node) buildServices(ctx, runCtx context.Context, o Options) error {
	cfg := n.Cfg
	n.Metrics = prometheus.NewRegistry()
	n.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rules, err := shippedRules()
	if err != nil {
		return err
	}
	cat, matrix, err := incident.ParseRules(rules)
	if err != nil {
		return err
	}
	cal, err := schemas.Calendar()
	if err != nil {
		return err
	}
	n.Registry = command.NewRegistry()
	n.Directory = directory.NewService(n.DB)
	n.Directory.Register(n.Registry)
	feed, err := command.NewFeed(ctx, n.JS, n.Names)
	if err != nil {
		return fmt.Errorf("change feed: %w", err)
	}
	routes, err := command.NewRoutes(ctx, n.JS, n.Names)
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	n.Incidents = incident.NewService(incident.NewStore(n.DB), feed, routes, cat, matrix, cal)
	n.Incidents.SetSLA(incident.SLAOptions{WarnBefore: cfg.DueWarning, UrgentAccept: cfg.UrgentAccept})
	n.Incidents.Register(n.Registry)
	configKV, err := n.JS.KeyValue(ctx, n.Names.ConfigBucket())
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	n.Config = incident.NewConfig(configKV, n.Incidents, rules, cal, n.Log) // watched once every document is registered
	keys, err := n.dataKeys()
	if err != nil {
		return err
	}
	if err := checkDataKey(ctx, configKV, keys); err != nil {
		return err
	}
	household.Keys = keys
	household.Register(n.Registry)
	household.RegisterEdits(n.Registry)
	volunteer.Register(n.Registry)
	rulesData, err := schemas.Files.ReadFile("points.json")
	if err != nil {
		return err
	}
	pointRules, err := volunteer.ParseRules(rulesData)
	if err != nil {
		return err
	}
	n.Points = &volunteer.Points{DB: n.DB}
	n.Points.SetRules(pointRules)
	n.Points.Register(n.Registry)
	complaints := &complaint.Service{DB: n.DB, Calendar: n.Incidents.Calendar, Now: o.Now}
	complaints.Register(n.Registry)
	notify.Register(n.Registry)
	n.Bus = command.NewBus(n.NC, n.JS, n.Names)
	n.Points.Bus = n.Bus
	plansData, err := schemas.Files.ReadFile("visits.json")
	if err != nil {
		return err
	}
	plans, err := household.ParsePlans(plansData)
	if err != nil {
		return err
	}
	n.Households = &household.Service{DB: n.DB, JS: n.JS, Names: n.Names, Bus: n.Bus, Calendar: n.Incidents.Calendar}
	n.Households.SetPlans(plans)
	n.Config.Register("visits", plansData, func(data []byte, apply bool) error {
		p, err := household.ParsePlans(data)
		if err == nil && apply {
			n.Households.SetPlans(p)
		}
		return err
	})
	n.Config.Register("points", rulesData, func(data []byte, apply bool) error {
		r, err := volunteer.ParseRules(data)
		if err == nil && apply {
			n.Points.SetRules(r)
		}
		return err
	})
	if err := n.Config.Watch(runCtx); err != nil {
		return err
	}

	key, err := n.jwtKey()
	if err != nil {
		return err
	}
	sessions, err := n.JS.KeyValue(ctx, n.Names.SessionsBucket())
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	routers := map[string]fieldsync.Router{}
	for _, name := range fieldsync.MutationNames {
		if strings.HasPrefix(name, "incident.") {
			routers[name] = n.Incidents
		}
	}
	routers[household.CmdCreate] = household.Router{DB: n.DB, Routes: routes}
	routers[household.CmdUpdate] = household.Router{DB: n.DB, Routes: routes}
	routers[household.CmdVisit] = household.Router{DB: n.DB, Routes: routes}
	routers[volunteer.CmdRecord] = volunteer.ActivityRouter{DB: n.DB}
	routers[complaint.CmdFile] = complaint.Router{DB: n.DB, Routes: routes}
	routers[complaint.CmdAnswer] = complaint.Router{DB: n.DB, Routes: routes}
	n.Sync, err = fieldsync.New(ctx, n.NC, n.JS, n.DB, n.Names, routers, n.Directory, fieldsync.Options{
		PushWait: cfg.PushWait, MaxMutations: cfg.MaxMutations, PullLimit: cfg.PullLimit, MaxOffline: cfg.MaxOffline,
		Horizon: cfg.TombstoneHoriz, Logger: n.Log, Now: o.Now,
	})
	if err != nil {
		return err
	}
	logins, err := n.JS.KeyValue(ctx, n.Names.LoginsBucket())
	if err != nil {
		return fmt.Errorf("logins: %w", err)
	}
	n.Auth = auth.New(n.Directory, n.Sync, sessions, auth.Options{Key: key, AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL,
		Logger: n.Log, Now: o.Now, BcryptCost: cfg.BcryptCost,
		Throttle: &auth.Throttle{KV: logins, AccountLimit: cfg.LoginFailures, AddressLimit: cfg.AddrFailures, Window: cfg.LoginLockout},
		SessionEnded: func(ctx context.Context, deviceID, userID string) {
			if err := n.Devices.Silence(ctx, deviceID, userID); err != nil {
				n.Log.Warn("device not silenced after its session ended", "device", deviceID, "err", err)
			}
		}})
	devices, err := n.JS.KeyValue(ctx, n.Names.DevicesBucket())
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	n.Devices = device.New(devices, o.Now)
	prefs, err := n.JS.KeyValue(ctx, n.Names.PrefsBucket())
	if err != nil {
		return fmt.Errorf("preferences: %w", err)
	}
	n.Prefs = notify.NewPrefs(prefs)
	refs, err := n.JS.KeyValue(ctx, n.Names.AttachRefsBucket())
	if err != nil {
		return fmt.Errorf("attachment references: %w", err)
	}
	dir := cfg.AttachDir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "attachments")
	}
	attachments, err := attachment.New(attachment.Options{Dir: dir, MaxSize: int64(cfg.AttachMax), Types: splitList(cfg.AttachTypes)}, attachment.KVRefs{KV: refs})
	if err != nil {
		return err
	}
	n.Projector = &stats.Projector{JS: n.JS, NC: n.NC, DB: n.DB, Names: n.Names, Calendar: n.Incidents.Calendar, Log: n.Log,
		AckWait: o.Stats.AckWait, Hook: o.Stats.Hook}
	n.Stats = &stats.Service{DB: n.DB, Now: o.Now, Projector: n.localProjector(),
		Categories: func() []string { return n.Incidents.Catalog().Leaves() },
		Units: func(ctx context.Context) ([]stats.Unit, error) {
			us, err := n.Directory.Units(ctx, org.SystemActor("stats"))
			out := make([]stats.Unit, len(us))
			for i, u := range us {
				out[i] = stats.Unit{ID: u.ID, Name: u.Name, Level: u.Level, Parent: u.Parent}
			}
			return out, err
		},
		CategoryName: func(code, lang string) string {
			c, ok := n.Incidents.Catalog().Find(code)
			switch {
			case !ok:
				return code
			case lang == "en":
				return c.Names.En
			}
			return c.Names.Zh
		}}
	n.App = mobileapi.New(mobileapi.Deps{
		Stats: n.Stats, StatsChanged: n.statsChanged, Projector: n.localProjector(),
		Auth: n.Auth, Sync: n.Sync, Incidents: n.Incidents, Config: n.Config, Directory: n.Directory, Admin: directory.NewAdmin(n.Directory, n.Bus, cfg.BcryptCost, 0), Attachments: attachments,
		Households: n.Households, Devices: n.Devices, Complaints: complaints,
		Inbox: notify.Inbox{DB: n.DB}, Prefs: n.Prefs, Points: n.Points,
		Ready: n.Ready, Metrics: n.Metrics, Logger: n.Log,
	}, mobileapi.Options{SyntheticStats: cfg.StatsSynthetic, MaxBody: cfg.MaxBody, MaxAttachment: cfg.AttachMax, PokeInterval: cfg.PokeInterval, Done: n.httpDone, Now: o.Now})
	return nil
}

// localProjector is the projector when it runs on this instance (the applier role).
func (n *Node) localProjector() *stats.Projector {
	if n.Cfg.HasRole("applier") {
		return n.Projector
	}
	return nil
}

// statsChanged streams the units whose figures changed, as the projector announces
// them (on any instance).
func (n *Node) statsChanged(ctx context.Context) (<-chan []string, error) {
	raw := make(chan *nats.Msg, 64)
	sub, err := n.NC.ChanSubscribe(stats.ChangedSubject(n.Names), raw)
	if err != nil {
		return nil, err
	}
	out := make(chan []string, 16)
	go func() {
		defer close(out)
		defer sub.Unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-raw:
				var units []string
				if json.Unmarshal(m.Data, &units) != nil {
					continue
				}
				select {
				case out <- units:
				default: // a slow reader misses a notice, not the next one
				}
			}
		}
	}()
	return out, nil
}

// shippedRules are the categories and capability matrix in schemas/, in force until
// an admin replaces them.
func shippedRules() (incident.Rules, error) {
	var r incident.Rules
	var err error
	if r.Categories, err = schemas.Files.ReadFile("categories.json"); err != nil {
		return r, err
	}
	r.Capabilities, err = schemas.Files.ReadFile("capabilities.json")
	return r, err
}

// jwtKey returns GRID_JWT_KEY, or a key generated once and kept in the data dir.
func (n *Node) jwtKey() ([]byte, error) {
	if n.Cfg.JWTKey != "" {
		if len(n.Cfg.JWTKey) < 32 {
			return nil, errors.New("config: GRID_JWT_KEY must be at least 32 characters")
		}
		return []byte(n.Cfg.JWTKey), nil
	}
	path := filepath.Join(n.Cfg.DataDir, "jwt.key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		n.Log.Warn("GRID_JWT_KEY is not set: using the key kept in the data dir; set it when running more than one instance", "file", path)
		return b, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	key := []byte(hex.EncodeToString(b))
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("write jwt key: %w", err)
	}
	n.Log.Warn("GRID_JWT_KEY is not set: generated a key and kept it in the data dir", "file", path)
	return key, nil
}

// dataKeys returns the keyring sealing personal data: GRID_DATA_KEY (or a key
// generated once and kept in the data dir) and GRID_DATA_KEYS_PREVIOUS.
func (n *Node) dataKeys() (*seal.Keyring, error) {
	cur := n.Cfg.DataKey
	if cur == "" {
		path := filepath.Join(n.Cfg.DataDir, "data.key")
		if b, err := os.ReadFile(path); err == nil {
			cur = string(b)
			n.Log.Warn("GRID_DATA_KEY is not set: using the key kept in the data dir; set it (and keep it apart from the database) in production", "file", path)
		} else {
			cur = seal.NewKey()
			if err := os.WriteFile(path, []byte(cur), 0o600); err != nil {
				return nil, fmt.Errorf("write data key: %w", err)
			}
			n.Log.Warn("GRID_DATA_KEY is not set: generated a key and kept it in the data dir", "file", path)
		}
	}
	key, err := seal.ParseKey(cur)
	if err != nil {
		return nil, fmt.Errorf("config: GRID_DATA_KEY: %w", err)
	}
	var old [][]byte
	for _, s := range strings.Split(n.Cfg.DataKeysOld, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := seal.ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("config: GRID_DATA_KEYS_PREVIOUS: %w", err)
		}
		old = append(old, k)
	}
	return seal.New(key, old...)
}

// checkDataKey makes every gridd of a deployment seal with the same key: the key in
// use is recorded in the config bucket; a gridd whose keys cannot open what that key
// sealed refuses to start (a second instance given no GRID_DATA_KEY would otherwise
// seal with a key of its own that the others cannot open). A gridd holding the
// recorded key among its previous ones moves the record to its current key (rotation).
func checkDataKey(ctx context.Context, kv jetstream.KeyValue, keys *seal.Keyring) error {
	const key = "datakey"
	e, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = kv.Create(ctx, key, []byte(keys.Current()))
		if errors.Is(err, jetstream.ErrKeyExists) {
			return checkDataKey(ctx, kv, keys) // another instance recorded one meanwhile
		}
		return err
	case err != nil:
		return fmt.Errorf("data key: %w", err)
	}
	recorded := string(e.Value())
	if recorded == keys.Current() {
		return nil
	}
	if !keys.Has(recorded) {
		return fmt.Errorf("config: GRID_DATA_KEY (key %s) is not the deployment's data key (key %s): give every gridd the same GRID_DATA_KEY; when rotating, put the old one in GRID_DATA_KEYS_PREVIOUS", keys.Current(), recorded)
	}
	_, err = kv.Update(ctx, key, []byte(keys.Current()), e.Revision())
	return err
}

// Ready reports whether the database, NATS and every applier are up.
func (n *Node) Ready(ctx context.Context) error {
	if err := n.Mongo.Ping(ctx, nil); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if !n.NC.IsConnected() {
		return errors.New("nats: not connected")
	}
	if _, err := n.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	for i, a := range n.Appliers {
		if !a.Ready() {
			return fmt.Errorf("applier %d not running", i)
		}
	}
	return nil
}

// SeedDemo seeds the demo city (idempotent).
func (n *Node) SeedDemo(ctx context.Context) (*demo.Report, error) {
	return demo.Seed(ctx, demo.Deps{Bus: n.Bus, Directory: n.Directory, Incidents: n.Incidents}, demo.Options{
		Password: n.Cfg.DemoPassword, BcryptCost: n.Cfg.BcryptCost, Logger: n.Log,
	})
}

// Bootstrap makes the first admin when there is no user at all and the demo is off.
func (n *Node) Bootstrap(ctx context.Context) (string, error) {
	return demo.Bootstrap(ctx, demo.Deps{Bus: n.Bus, Directory: n.Directory, Incidents: n.Incidents}, n.Cfg.AdminPassword, n.Cfg.BcryptCost)
}

// ApplierErr delivers an applier's fatal error.
func (n *Node) ApplierErr() <-chan error { return n.applyErr }

// Listen serves HTTP on ln until Stop.
func (n *Node) Listen(ln net.Listener) error {
	return n.App.Listener(ln)
}

// Stop shuts down in order: HTTP, appliers, NATS, database.
func (n *Node) Stop(ctx context.Context) {
	n.stopOnce.Do(func() {
		close(n.httpDone)
		if n.App != nil {
			_ = n.App.ShutdownWithContext(ctx)
		}
		if n.cancel != nil {
			n.cancel()
		}
		n.wg.Wait()
		if n.NC != nil {
			_ = n.NC.Drain()
			for i := 0; i < 100 && !n.NC.IsClosed(); i++ {
				time.Sleep(10 * time.Millisecond)
			}
			n.NC.Close()
		}
		if n.nats != nil {
			n.nats.Stop()
		}
		if n.Mongo != nil {
			_ = n.Mongo.Disconnect(context.Background())
		}
		if n.ferret != nil {
			n.ferret.Stop()
		}
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
