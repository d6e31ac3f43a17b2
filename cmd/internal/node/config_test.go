package node

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaultsRunWithNothingSet(t *testing.T) {
	c, err := LoadConfig(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.DataDir != "./data" || !c.Demo || c.DemoPassword != "gridkeeper" || c.MongoURI != "" || c.NATSURL != "" {
		t.Errorf("defaults: %+v", c)
	}
	if !c.HasRole("api") || !c.HasRole("applier") {
		t.Error("both roles by default")
	}
}

func TestConfigPrecedenceAndValidation(t *testing.T) {
	c, err := LoadConfig([]string{"--http-addr", "127.0.0.1:9", "--no-demo"}, env(map[string]string{
		"GRID_HTTP_ADDR": "127.0.0.1:7", "GRID_PUSH_WAIT": "3s", "GRID_JWT_KEY": "secret-secret",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9" || c.PushWait != 3*time.Second || c.Demo {
		t.Errorf("flags over env over defaults: %+v", c)
	}
	if m := c.Masked(); m["GRID_JWT_KEY"] != "***" || m["GRID_DEMO_PASSWORD"] != "***" || m["GRID_HTTP_ADDR"] != "127.0.0.1:9" {
		t.Errorf("masked: %v", m)
	}
	for name, e := range map[string]map[string]string{
		"short horizon": {"GRID_TOMBSTONE_HORIZON": "24h"},
		"bad number":    {"GRID_PARTITIONS": "many"},
		"bad role":      {"GRID_ROLES": "api,cook"},
		"bad prefix":    {"GRID_STREAM_PREFIX": "a.b"},
		"bad duration":  {"GRID_PUSH_WAIT": "soon"},
	} {
		if _, err := LoadConfig(nil, env(e), &bytes.Buffer{}); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	if _, err := LoadConfig([]string{"--help"}, env(nil), &out); err == nil {
		t.Fatal("--help should stop")
	}
	for _, k := range EnvKeys() {
		if !strings.Contains(out.String(), k) {
			t.Errorf("--help does not mention %s", k)
		}
	}
}

// --help never shows a secret taken from the environment, and the secret still applies.
func TestHelpHidesSecrets(t *testing.T) {
	e := env(map[string]string{"GRID_JWT_KEY": "very-secret-key-value-0123456789", "GRID_MONGO_URI": "mongodb://user:pw@db/"})
	var out bytes.Buffer
	_, _ = LoadConfig([]string{"--help"}, e, &out)
	if strings.Contains(out.String(), "very-secret") || strings.Contains(out.String(), "user:pw") {
		t.Errorf("--help shows a secret:\n%s", out.String())
	}
	c, err := LoadConfig(nil, e, &bytes.Buffer{})
	if err != nil || c.JWTKey != "very-secret-key-value-0123456789" || c.MongoURI != "mongodb://user:pw@db/" {
		t.Errorf("secrets from the environment: %v %+v", err, c)
	}
	c, _ = LoadConfig([]string{"--jwt-key", "from-the-flag-from-the-flag-01234"}, e, &bytes.Buffer{})
	if c.JWTKey != "from-the-flag-from-the-flag-01234" {
		t.Errorf("a flag beats the environment: %q", c.JWTKey)
	}
}
