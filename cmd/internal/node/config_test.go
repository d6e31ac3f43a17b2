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
