// Package node assembles one gridd process: configuration, embedded or external
// database and broker, the write path, the services and the HTTP API, started and
// stopped in order. cmd/gridd runs one; tests and the load tool run many.
package node

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gridkeeper/gridkeeper/services/command"
)

// Config is every setting gridd reads. Each field is set, in order of precedence, by
// its flag, its environment variable, or its default; `gridd --help` lists them all.
type Config struct {
	HTTPAddr   string `env:"GRID_HTTP_ADDR" default:"127.0.0.1:8080" help:"address the HTTP API listens on"`
	DataDir    string `env:"GRID_DATA_DIR" default:"./data" help:"directory for the embedded database, JetStream files and generated keys"`
	MongoURI   string `env:"GRID_MONGO_URI" secret:"true" help:"MongoDB URI; empty runs the embedded FerretDB (SQLite in the data dir); a FerretDB on SQLite of your own needs ?maxPoolSize=8"`
	MongoDB    string `env:"GRID_MONGO_DB" default:"gridkeeper" help:"database name"`
	PostgreURL string `env:"GRID_FERRET_POSTGRESQL_URL" secret:"true" help:"run the embedded FerretDB on this PostgreSQL instead of SQLite"`
	NATSURL    string `env:"GRID_NATS_URL" secret:"true" help:"NATS URL; empty runs an embedded nats-server with JetStream in the data dir"`
	NATSListen string `env:"GRID_NATS_LISTEN" help:"also open the embedded NATS on this address (e.g. 127.0.0.1:4222); empty means in-process only"`
	Prefix     string `env:"GRID_STREAM_PREFIX" default:"GK" help:"prefix of JetStream stream names and subjects"`
	Partitions int    `env:"GRID_PARTITIONS" default:"8" help:"number of command partitions (fixed for the life of a deployment)"`
	Roles      string `env:"GRID_ROLES" default:"api,applier,notifier" help:"parts this instance runs: api, applier, notifier"`

	JWTKey         string        `env:"GRID_JWT_KEY" secret:"true" help:"HMAC key for access tokens; empty generates one kept in the data dir"`
	DataKey        string        `env:"GRID_DATA_KEY" secret:"true" help:"key sealing residents' ID-card and phone numbers (64 hex digits); empty generates one kept in the data dir"`
	DataKeysOld    string        `env:"GRID_DATA_KEYS_PREVIOUS" secret:"true" help:"earlier data keys, comma separated, still opening what they sealed until gridctl keys reseal moved it to GRID_DATA_KEY"`
	AccessTTL      time.Duration `env:"GRID_ACCESS_TTL" default:"15m" help:"access token lifetime"`
	LoginFailures  int           `env:"GRID_LOGIN_FAILURES" default:"5" help:"failed logins of one account within GRID_LOGIN_LOCKOUT that lock it for GRID_LOGIN_LOCKOUT"`
	AddrFailures   int           `env:"GRID_LOGIN_ADDRESS_FAILURES" default:"50" help:"failed logins from one network address within GRID_LOGIN_LOCKOUT that refuse it for GRID_LOGIN_LOCKOUT (behind a shared proxy, raise it)"`
	LoginLockout   time.Duration `env:"GRID_LOGIN_LOCKOUT" default:"15m" help:"the window of failed logins and the length of a lock-out"`
	RefreshTTL     time.Duration `env:"GRID_REFRESH_TTL" default:"720h" help:"refresh token lifetime"`
	BcryptCost     int           `env:"GRID_BCRYPT_COST" default:"11" help:"bcrypt cost for password hashes"`
	AdminPassword  string        `env:"GRID_ADMIN_PASSWORD" secret:"true" help:"password of the bootstrap 'admin' user made when no user exists and the demo is off; empty generates and prints one"`
	Demo           bool          `env:"GRID_DEMO" default:"true" help:"seed the demo city on first start (--demo=false or --no-demo turns it off)"`
	StatsSynthetic bool          `env:"GRID_STATS_SYNTHETIC" default:"false" help:"let an admin count made-up items into the dashboard's figures (gridctl stats generate; benchmarks only)"`
	DemoPassword   string        `env:"GRID_DEMO_PASSWORD" default:"gridkeeper" secret:"true" help:"password of the demo logins"`
	PushWait       time.Duration `env:"GRID_PUSH_WAIT" default:"2s" help:"how long a push waits for outcomes before answering pending"`
	MaxOffline     time.Duration `env:"GRID_MAX_OFFLINE" default:"168h" help:"how far back a queued mutation's clientTime is believed when judging it by its author's unit then"`
	PokeInterval   time.Duration `env:"GRID_POKE_INTERVAL" default:"2s" help:"least time between two sync pokes to one device (bursts are coalesced)"`
	DueWarning     time.Duration `env:"GRID_DUE_WARNING" default:"2h" help:"how long before an item's due time the due-soon warning fires (0 for none)"`
	UrgentAccept   time.Duration `env:"GRID_URGENT_ACCEPT" default:"1h" help:"how soon an urgent item must be accepted before it is passed up"`
	FCMCredentials string        `env:"GRID_FCM_CREDENTIALS" secret:"true" help:"Firebase service account key (JSON file) for pushes; empty writes pushes to the log instead (local outbox)"`
	FCMProject     string        `env:"GRID_FCM_PROJECT" help:"Firebase project id; empty takes the one in the credentials"`
	FCMEndpoint    string        `env:"GRID_FCM_ENDPOINT" help:"FCM endpoint to use instead of Google's (a proxy in a closed network)"`
	MaxBody        int           `env:"GRID_MAX_BODY" default:"1048576" help:"largest JSON request body in bytes (413 above)"`
	AttachDir      string        `env:"GRID_ATTACHMENT_DIR" help:"directory of attachments; empty means <data dir>/attachments"`
	AttachMax      int           `env:"GRID_ATTACHMENT_MAX" default:"10485760" help:"largest attachment in bytes"`
	AttachTypes    string        `env:"GRID_ATTACHMENT_TYPES" default:"image/jpeg,image/png,image/webp" help:"allowed attachment media types, comma separated"`
	MaxMutations   int           `env:"GRID_MAX_MUTATIONS" default:"500" help:"most mutations in one push"`
	PullLimit      int           `env:"GRID_PULL_LIMIT" default:"500" help:"largest page a pull returns"`
	TombstoneHoriz time.Duration `env:"GRID_TOMBSTONE_HORIZON" default:"720h" help:"how long deletes and mutation outcomes are kept for pulls (at least 30 days)"`
	ApplyBatch     int           `env:"GRID_APPLY_BATCH" default:"256" help:"most commands an applier takes in one database round trip"`
	Preload        string        `env:"GRID_PRELOAD" default:"auto" help:"appliers hold their partition's records in memory: on, off, or auto (on for the embedded FerretDB)"`
	LogLevel       string        `env:"GRID_LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
	PprofAddr      string        `env:"GRID_PPROF_ADDR" help:"serve Go's profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; empty serves none (never expose it)"`
	ShutdownWait   time.Duration `env:"GRID_SHUTDOWN_WAIT" default:"10s" help:"grace period for in-flight requests on SIGTERM"`
}

// LoadConfig reads flags (args) over environment (getenv) over defaults.
func LoadConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("gridd", flag.ContinueOnError)
	fs.SetOutput(out)
	noDemo := fs.Bool("no-demo", false, "do not seed the demo city (same as --demo=false)")
	v := reflect.ValueOf(&cfg).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		env := f.Tag.Get("env")
		def := f.Tag.Get("default")
		secret := f.Tag.Get("secret") == "true"
		if e := getenv(env); e != "" && !secret {
			def = e
		}
		name := flagName(env)
		help := fmt.Sprintf("%s (env %s)", f.Tag.Get("help"), env)
		switch p := v.Field(i).Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, name, def, help)
		case *int:
			n, err := strconv.Atoi(orZero(def))
			if err != nil {
				return cfg, fmt.Errorf("config: %s=%q: not a number", env, def)
			}
			fs.IntVar(p, name, n, help)
		case *bool:
			b, err := strconv.ParseBool(orFalse(def))
			if err != nil {
				return cfg, fmt.Errorf("config: %s=%q: not true or false", env, def)
			}
			fs.BoolVar(p, name, b, help)
		case *time.Duration:
			d, err := time.ParseDuration(orZero(def))
			if err != nil {
				return cfg, fmt.Errorf("config: %s=%q: not a duration", env, def)
			}
			fs.DurationVar(p, name, d, help)
		default:
			panic("config: unsupported field type " + f.Type.String())
		}
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	// Secrets from the environment are applied after parsing, so --help (which prints
	// flag defaults) never shows them. All secrets are strings.
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		env := f.Tag.Get("env")
		if f.Tag.Get("secret") != "true" || set[flagName(env)] {
			continue
		}
		if e := getenv(env); e != "" {
			v.Field(i).SetString(e)
		}
	}
	if *noDemo {
		cfg.Demo = false
	}
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	var errs []string
	if c.Partitions < 1 || c.Partitions > 1024 {
		errs = append(errs, "GRID_PARTITIONS must be 1..1024")
	}
	if c.TombstoneHoriz < 30*24*time.Hour {
		errs = append(errs, "GRID_TOMBSTONE_HORIZON must be at least 720h (30 days)")
	}
	if c.AccessTTL < time.Minute || c.RefreshTTL < c.AccessTTL {
		errs = append(errs, "GRID_ACCESS_TTL must be at least 1m and GRID_REFRESH_TTL at least as long")
	}
	if c.LoginFailures < 1 || c.AddrFailures < 1 || c.LoginLockout < time.Second || c.LoginLockout > 24*time.Hour {
		errs = append(errs, "GRID_LOGIN_FAILURES and GRID_LOGIN_ADDRESS_FAILURES must be positive, GRID_LOGIN_LOCKOUT 1s..24h")
	}
	if c.MaxBody < 1024 || c.PullLimit < 1 || c.MaxMutations < 1 || c.ApplyBatch < 1 {
		errs = append(errs, "GRID_MAX_BODY, GRID_PULL_LIMIT, GRID_MAX_MUTATIONS and GRID_APPLY_BATCH must be positive (body at least 1024)")
	}
	if strings.ContainsAny(c.Prefix, ".*> ") || c.Prefix == "" {
		errs = append(errs, "GRID_STREAM_PREFIX must be one subject token")
	}
	if c.MaxMutations > command.WindowSize {
		errs = append(errs, fmt.Sprintf("GRID_MAX_MUTATIONS must be at most %d", command.WindowSize))
	}
	if c.Preload != "auto" && c.Preload != "on" && c.Preload != "off" {
		errs = append(errs, "GRID_PRELOAD must be auto, on or off")
	}
	for _, r := range c.roleList() {
		if r != "api" && r != "applier" && r != "notifier" {
			errs = append(errs, "GRID_ROLES: unknown role "+strconv.Quote(r))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (c Config) roleList() []string {
	var out []string
	for _, r := range strings.Split(c.Roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// HasRole reports whether this instance runs a part (api, applier, notifier).
func (c Config) HasRole(role string) bool {
	for _, r := range c.roleList() {
		if r == role {
			return true
		}
	}
	return false
}

// Masked lists every setting as KEY=value for the startup log, secrets masked.
func (c Config) Masked() map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		val := fmt.Sprint(v.Field(i).Interface())
		if f.Tag.Get("secret") == "true" && val != "" {
			val = "***"
		}
		out[f.Tag.Get("env")] = val
	}
	return out
}

// EnvKeys lists every environment variable gridd reads, sorted.
func EnvKeys() []string {
	t := reflect.TypeOf(Config{})
	keys := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		keys = append(keys, t.Field(i).Tag.Get("env"))
	}
	sort.Strings(keys)
	return keys
}

func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "GRID_")), "_", "-")
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func orFalse(s string) string {
	if s == "" {
		return "false"
	}
	return s
}
