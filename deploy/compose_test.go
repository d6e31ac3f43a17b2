package deploy

import (
	"bufio"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Paths are relative to this package's directory, where `go test` runs.
const (
	repoRoot     = ".."
	composePath  = "../docker-compose.yml"
	dockerfile   = "Dockerfile" // deploy/Dockerfile
	dockerignore = "../.dockerignore"
	commandsDir  = "../cmd" // gridd's Config struct is somewhere below (cmd/internal/node today)
)

// pending lists GRID_* settings the compose file may pass before gridd's Config
// declares them; remove each once config.go has it (TestPendingSettingsStillPending
// says when). Empty today.
var pending = []string{}

// composeFile is the part of the Compose specification these tests read. The field
// types accept both the short and the long syntax Compose allows.
type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string       `yaml:"image"`
	Build       *buildSpec   `yaml:"build"`
	Command     stringList   `yaml:"command"`
	Ports       []portSpec   `yaml:"ports"`
	Environment environment  `yaml:"environment"`
	DependsOn   dependsOn    `yaml:"depends_on"`
	Volumes     []volumeSpec `yaml:"volumes"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
}

// stringList is a command or healthcheck test: a list, or one string split on blanks.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

type buildSpec struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func (b *buildSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain buildSpec
	return n.Decode((*plain)(b))
}

// portSpec is "[host_ip:]published:target[/proto]" or the long syntax.
type portSpec struct {
	Published string `yaml:"published"`
	Target    string `yaml:"target"`
}

func (p *portSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s, _, _ := strings.Cut(n.Value, "/")
		parts := strings.Split(s, ":")
		p.Target = parts[len(parts)-1]
		if len(parts) >= 2 {
			p.Published = parts[len(parts)-2]
		}
		return nil
	}
	type plain portSpec
	return n.Decode((*plain)(p))
}

// environment is a map or a list of KEY=value.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	out := environment{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	} else {
		var m map[string]*string
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			if v != nil {
				out[k] = *v
			} else {
				out[k] = ""
			}
		}
	}
	*e = out
	return nil
}

// dependsOn maps a service name to its condition; the list form means service_started.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	out := dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			out[s] = "service_started"
		}
	} else {
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			if v.Condition == "" {
				v.Condition = "service_started"
			}
			out[k] = v.Condition
		}
	}
	*d = out
	return nil
}

// volumeSpec is "source:target[:mode]" or the long syntax.
type volumeSpec struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
}

func (v *volumeSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		if len(parts) == 1 {
			v.Target = parts[0]
		} else {
			v.Source, v.Target = parts[0], parts[1]
		}
		return nil
	}
	type plain volumeSpec
	return n.Decode((*plain)(v))
}

type healthcheck struct {
	Test    stringList `yaml:"test"`
	Disable bool       `yaml:"disable"`
}

// command is the healthcheck's program and arguments, without the CMD / CMD-SHELL word.
func (h *healthcheck) command() []string {
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	switch h.Test[0] {
	case "CMD", "CMD-SHELL":
		return h.Test[1:]
	case "NONE":
		return nil
	}
	return h.Test
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatalf("read compose file: %v", err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s is not valid YAML for the compose structs: %v", composePath, err)
	}
	return c
}

func mustService(t *testing.T, c composeFile, name string) service {
	t.Helper()
	s, ok := c.Services[name]
	if !ok {
		t.Fatalf("%s: no service %q (services: %v)", composePath, name, keys(c.Services))
	}
	return s
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// flagValue returns the value after flag in args ("--f v" or "--f=v") and whether the
// flag is there at all.
func flagValue(args []string, names ...string) (string, bool) {
	for i, a := range args {
		for _, n := range names {
			if a == n {
				if i+1 < len(args) {
					return args[i+1], true
				}
				return "", true
			}
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	images := map[string]*regexp.Regexp{
		"mongo": regexp.MustCompile(`^mongo:7([.-]|$)`),
		// nats-server 2.12 brought JetStream message schedules, which the SLA timers use.
		"nats":  regexp.MustCompile(`^nats:2\.(1[2-9]|[2-9][0-9])([.-]|$)`),
		"gridd": nil, // built, see TestComposeGriddBuild
	}
	for name, re := range images {
		t.Run(name, func(t *testing.T) {
			s := mustService(t, c, name)
			if re != nil && !re.MatchString(s.Image) {
				t.Errorf("service %s: image %q does not match %s", name, s.Image, re)
			}
			if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.command()) == 0 {
				t.Errorf("service %s: needs a healthcheck (gridd waits for service_healthy, and operators for gridd)", name)
			}
		})
	}
}

func TestComposeCommands(t *testing.T) {
	c := loadCompose(t)
	tests := map[string]struct {
		service string
		flags   []string // any of these spellings
		want    string   // the value it must have; "" means only present
	}{
		"mongo is a replica set (transactions, change streams)": {"mongo", []string{"--replSet"}, ""},
		"mongo listens beyond loopback":                         {"mongo", []string{"--bind_ip_all"}, ""},
		"nats runs JetStream":                                   {"nats", []string{"-js", "--jetstream"}, ""},
		"nats stores JetStream in /data":                        {"nats", []string{"-sd", "--store_dir"}, "/data"},
		"nats serves monitoring for the healthcheck":            {"nats", []string{"-m", "--http_port"}, "8222"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := mustService(t, c, tc.service)
			v, ok := flagValue(s.Command, tc.flags...)
			if !ok {
				t.Fatalf("service %s: command %q lacks %s", tc.service, s.Command, strings.Join(tc.flags, " or "))
			}
			if tc.want != "" && v != tc.want {
				t.Errorf("service %s: %s is %q, want %q", tc.service, tc.flags[0], v, tc.want)
			}
		})
	}
}

func TestComposeVolumes(t *testing.T) {
	c := loadCompose(t)
	griddData := mustService(t, c, "gridd").Environment["GRID_DATA_DIR"]
	tests := map[string]string{ // service → directory that must be a named volume
		"mongo": "/data/db",
		"nats":  "/data",
		"gridd": griddData,
	}
	for name, dir := range tests {
		t.Run(name, func(t *testing.T) {
			if dir == "" {
				t.Fatalf("service %s: no data directory to check (is GRID_DATA_DIR set?)", name)
			}
			s := mustService(t, c, name)
			i := slices.IndexFunc(s.Volumes, func(v volumeSpec) bool { return v.Target == dir })
			if i < 0 {
				t.Fatalf("service %s: %s is not a volume, its data would be lost with the container", name, dir)
			}
			src := s.Volumes[i].Source
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s: volume %q for %s is not a named volume declared under top-level volumes", name, src, dir)
			}
		})
	}
}

func TestComposeGriddBuild(t *testing.T) {
	c := loadCompose(t)
	s := mustService(t, c, "gridd")
	if s.Build == nil {
		t.Fatal("service gridd: no build section; it must be built from deploy/Dockerfile")
	}
	ctx := filepath.Join(repoRoot, s.Build.Context)
	df := s.Build.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	got := filepath.Join(ctx, df)
	if want := filepath.Join(repoRoot, "deploy", "Dockerfile"); got != want {
		t.Errorf("service gridd: builds %s, want %s", got, want)
	}
	if _, err := os.Stat(got); err != nil {
		t.Errorf("service gridd: dockerfile: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
		t.Errorf("service gridd: build context %q is not the module root: %v", s.Build.Context, err)
	}
}

func TestComposeGriddNetwork(t *testing.T) {
	c := loadCompose(t)
	mongo := mustService(t, c, "mongo")
	s := mustService(t, c, "gridd")

	t.Run("publishes 8080", func(t *testing.T) {
		if !slices.ContainsFunc(s.Ports, func(p portSpec) bool { return p.Published == "8080" && p.Target == "8080" }) {
			t.Errorf("service gridd: ports %+v do not publish 8080:8080", s.Ports)
		}
		addr := s.Environment["GRID_HTTP_ADDR"]
		if !strings.HasSuffix(addr, ":8080") || strings.HasPrefix(addr, "127.") || strings.HasPrefix(addr, "localhost") {
			t.Errorf("service gridd: GRID_HTTP_ADDR=%q; it must listen on all interfaces at :8080 to be reachable through the published port", addr)
		}
	})

	t.Run("waits for healthy dependencies", func(t *testing.T) {
		for _, dep := range []string{"mongo", "nats"} {
			if got := s.DependsOn[dep]; got != "service_healthy" {
				t.Errorf("service gridd: depends_on %s with condition %q, want service_healthy", dep, got)
			}
		}
	})

	t.Run("GRID_MONGO_URI names the mongo service and its replica set", func(t *testing.T) {
		u, err := url.Parse(s.Environment["GRID_MONGO_URI"])
		if err != nil {
			t.Fatalf("GRID_MONGO_URI: %v", err)
		}
		if u.Scheme != "mongodb" || u.Hostname() != "mongo" {
			t.Errorf("GRID_MONGO_URI=%q: want mongodb://mongo:27017/…", u)
		}
		rs, _ := flagValue(mongo.Command, "--replSet")
		if got := u.Query().Get("replicaSet"); got == "" || got != rs {
			t.Errorf("GRID_MONGO_URI replicaSet=%q, mongo runs --replSet %q", got, rs)
		}
	})

	t.Run("GRID_NATS_URL names the nats service", func(t *testing.T) {
		u, err := url.Parse(s.Environment["GRID_NATS_URL"])
		if err != nil {
			t.Fatalf("GRID_NATS_URL: %v", err)
		}
		if u.Scheme != "nats" || u.Hostname() != "nats" {
			t.Errorf("GRID_NATS_URL=%q: want nats://nats:4222", u)
		}
	})

	t.Run("healthcheck asks /readyz", func(t *testing.T) {
		cmd := strings.Join(s.Healthcheck.command(), " ")
		if !strings.Contains(cmd, "/readyz") {
			t.Errorf("service gridd: healthcheck %q does not ask /readyz", cmd)
		}
	})
}

// settingTag finds the struct tags of gridd's Config. The Go files under cmd/ are read
// as text: the Config lives in package main or in cmd/internal, which this package may
// not import, and it has moved before.
var settingTag = regexp.MustCompile("`[^`]*\\benv:\"(GRID_[A-Z0-9_]+)\"[^`]*`")

// settings returns every GRID_* name declared under cmd/, and whether it is a secret.
func settings(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var files []string
	err := filepath.WalkDir(commandsDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil // files come and go while others work in the tree
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		if ms := settingTag.FindAllStringSubmatch(string(b), -1); len(ms) > 0 {
			files = append(files, path)
			for _, m := range ms {
				out[m[1]] = strings.Contains(m[0], `secret:"true"`)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the settings: %v", err)
	}
	// Guard against a regexp that silently stops matching and lets everything pass.
	for _, must := range []string{"GRID_HTTP_ADDR", "GRID_DATA_DIR", "GRID_MONGO_URI", "GRID_NATS_URL", "GRID_JWT_KEY"} {
		if _, ok := out[must]; !ok {
			t.Fatalf("no env:%q struct tag in the Go files under %s (found %v in %v); has the Config struct changed shape?", must, commandsDir, keys(out), files)
		}
	}
	return out
}

func TestComposeSettingsAreReal(t *testing.T) {
	declared := settings(t)
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	// Every mention counts: environment keys and ${GRID_…} interpolations alike.
	used := regexp.MustCompile(`\bGRID_[A-Z0-9_]+\b`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatalf("%s mentions no GRID_* setting", composePath)
	}
	seen := map[string]bool{}
	for _, name := range used {
		if seen[name] {
			continue
		}
		seen[name] = true
		if _, ok := declared[name]; !ok && !slices.Contains(pending, name) {
			t.Errorf("%s uses %s, which gridd's Config does not declare (settings: %v)", composePath, name, keys(declared))
		}
	}
}

// TestPendingSettingsStillPending keeps the allow-list short: once config.go declares
// a pending setting, it must leave the list.
func TestPendingSettingsStillPending(t *testing.T) {
	declared := settings(t)
	for _, name := range pending {
		if _, ok := declared[name]; ok {
			t.Errorf("%s is now declared in gridd's Config: remove it from pending in compose_test.go", name)
		}
	}
}

func TestComposeSecretsAreNotWrittenIn(t *testing.T) {
	declared := settings(t)
	interpolation := regexp.MustCompile(`^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$`)
	for name, s := range loadCompose(t).Services {
		for k, v := range s.Environment {
			if !declared[k] || v == "" || interpolation.MatchString(v) {
				continue
			}
			// URLs are secret because they may carry credentials; one without them is fine.
			if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.User == nil {
				continue
			}
			t.Errorf("service %s: secret %s has a value written in the file; take it from the environment (${%s:?…})", name, k, k)
		}
	}
}

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	stage int // index of the FROM it belongs to
	op    string
	args  string
}

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatalf("open deploy/Dockerfile: %v", err)
	}
	defer f.Close()
	var (
		out   []instruction
		buf   strings.Builder
		stage = -1
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && buf.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			buf.WriteString(cont + " ")
			continue
		}
		buf.WriteString(line)
		op, args, _ := strings.Cut(strings.TrimSpace(buf.String()), " ")
		buf.Reset()
		op = strings.ToUpper(op)
		if op == "FROM" {
			stage++
		}
		out = append(out, instruction{stage: stage, op: op, args: strings.TrimSpace(args)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if stage < 0 {
		t.Fatal("deploy/Dockerfile has no FROM")
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t)
	final := ins[len(ins)-1].stage
	has := func(stage int, op string, re *regexp.Regexp) bool {
		return slices.ContainsFunc(ins, func(i instruction) bool {
			return (stage < 0 || i.stage == stage) && i.op == op && re.MatchString(i.args)
		})
	}
	const anyStage = -1
	tests := map[string]struct {
		stage int
		op    string
		re    string
	}{
		"a golang:1.26 build stage":          {anyStage, "FROM", `^(--platform=\S+\s+)?golang:1\.26([.-]|\s|$)`},
		"builds ./cmd/gridd":                 {anyStage, "RUN", `go build .*\./cmd/gridd(\s|$)`},
		"builds ./cmd/gridctl":               {anyStage, "RUN", `go build .*\./cmd/gridctl(\s|$)`},
		"builds with -trimpath":              {anyStage, "RUN", `go build .*-trimpath`},
		"builds without cgo":                 {anyStage, "ENV", `CGO_ENABLED=0`},
		"runtime is debian:bookworm-slim":    {final, "FROM", `^debian:bookworm-slim(\s|$)`},
		"runtime has CA certificates":        {final, "RUN", `install .*ca-certificates`},
		"runtime has time zones":             {final, "RUN", `install .*tzdata`},
		"runtime exposes 8080":               {final, "EXPOSE", `(^|\s)8080(/tcp)?(\s|$)`},
		"runtime starts gridd":               {final, "ENTRYPOINT", `^\["/usr/local/bin/gridd"`},
		"gridd is copied from the builder":   {final, "COPY", `--from=\S+ .*gridd`},
		"gridctl is copied from the builder": {final, "COPY", `--from=\S+ .*gridctl`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			re := regexp.MustCompile(tc.re)
			if !has(tc.stage, tc.op, re) {
				where := "any stage"
				if tc.stage == final {
					where = "the final stage"
				}
				t.Errorf("deploy/Dockerfile: no %s instruction in %s matching %s", tc.op, where, re)
			}
		})
	}

	t.Run("runs as a non-root user", func(t *testing.T) {
		user := ""
		for _, i := range ins {
			if i.stage == final && i.op == "USER" {
				user = i.args
			}
		}
		name, _, _ := strings.Cut(user, ":")
		if name == "" || name == "root" || name == "0" {
			t.Errorf("deploy/Dockerfile: final stage runs as %q; add a USER that is not root", user)
		}
	})

	t.Run("has the program the compose healthcheck runs", func(t *testing.T) {
		cmd := mustService(t, loadCompose(t), "gridd").Healthcheck.command()
		if len(cmd) == 0 {
			t.Skip("gridd has no healthcheck")
		}
		prog := strings.Fields(cmd[0])[0]
		if !has(final, "RUN", regexp.MustCompile(`install .*\b`+regexp.QuoteMeta(prog)+`\b`)) {
			t.Errorf("compose runs %q in gridd's healthcheck, but the final stage does not install it", prog)
		}
	})
}

// ignoreRule is one .dockerignore line as a regexp on slash paths relative to the
// context. An excluded directory excludes everything below it; the last matching rule
// wins, so "!" exceptions work as in Docker.
type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
	text   string
}

func loadDockerignore(t *testing.T) []ignoreRule {
	t.Helper()
	b, err := os.ReadFile(dockerignore)
	if err != nil {
		t.Fatalf("read .dockerignore: %v", err)
	}
	return parseDockerignore(string(b))
}

func parseDockerignore(text string) []ignoreRule {
	var rules []ignoreRule
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{text: line}
		if p, ok := strings.CutPrefix(line, "!"); ok {
			r.negate, line = true, p
		}
		line = strings.Trim(filepath.ToSlash(filepath.Clean(line)), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("(/.*)?$")
		r.re = regexp.MustCompile(re.String())
		rules = append(rules, r)
	}
	return rules
}

func ignored(rules []ignoreRule, path string) (bool, string) {
	out, by := false, ""
	for _, r := range rules {
		if r.re.MatchString(path) {
			out, by = !r.negate, r.text
		}
	}
	return out, by
}

func TestDockerignore(t *testing.T) {
	rules := loadDockerignore(t)
	for _, p := range []string{".git", "data/gridkeeper.sqlite", "web/node_modules/x/index.js"} {
		if ok, _ := ignored(rules, p); !ok {
			t.Errorf(".dockerignore: %s is sent to the build; exclude it", p)
		}
	}

	// Everything the build compiles or embeds must stay in the context.
	need := []string{"go.mod", "go.sum"}
	embed := regexp.MustCompile(`(?m)^//go:embed\s+(.+)$`)
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // files come and go while others work in the tree
		}
		rel, _ := filepath.Rel(repoRoot, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" || d.Name() == "node_modules" || d.Name() == "testdata" || rel == "data" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		need = append(need, rel)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		for _, m := range embed.FindAllStringSubmatch(string(b), -1) {
			for _, pat := range strings.Fields(m[1]) {
				pat = strings.TrimPrefix(strings.Trim(pat, "\"`"), "all:")
				matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), pat))
				for _, match := range matches {
					r, _ := filepath.Rel(repoRoot, match)
					need = append(need, filepath.ToSlash(r))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range need {
		if ok, by := ignored(rules, p); ok {
			t.Errorf(".dockerignore: %q excludes %s, which the image build needs", by, p)
		}
	}
}

func TestIgnoredMatcher(t *testing.T) {
	rules := parseDockerignore("# comment\ndata/\n**/node_modules/\n*.test\n!keep.test\n")
	tests := map[string]bool{
		"data":                    true,
		"data/db/x.sqlite":        true,
		"pkg/data/calendar.json":  false,
		"node_modules/a.js":       true,
		"web/node_modules/a/b.js": true,
		"gridd.test":              true,
		"keep.test":               false,
		"cmd/gridd/gridd.test":    false,
		"cmd/gridd/main.go":       false,
	}
	for path, want := range tests {
		if got, _ := ignored(rules, path); got != want {
			t.Errorf("ignored(%q) = %v, want %v", path, got, want)
		}
	}
}
