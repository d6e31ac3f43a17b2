package node_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// Password guessing is throttled: an account is locked after 3 failures in the
// window (the right password is then refused too, 429 with Retry-After), a success
// before that forgets the account's failures, an address is refused after 6 failures
// whatever the accounts, and both open again when the window has passed.
func TestLoginThrottle(t *testing.T) {
	clock := nodetest.NewClock()
	h := nodetest.Start(t, func(c *node.Config, o *node.Options) {
		c.LoginFailures, c.AddrFailures, c.LoginLockout = 3, 6, time.Minute
		o.Now = clock.Now
	})
	h.Org(2)
	login := func(user, pw string) (int, string, map[string]any) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"login": user, "password": pw, "deviceId": "thr-" + user})
		resp, err := http.Post(h.URL+"/v1/auth/login", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		return resp.StatusCode, resp.Header.Get("Retry-After"), m
	}
	expect := func(what, user, pw string, status int, code string) map[string]any {
		t.Helper()
		st, _, m := login(user, pw)
		if st != status || (code != "" && m["code"] != code) {
			t.Fatalf("%s: %d %v, want %d %s", what, st, m, status, code)
		}
		return m
	}
	expect("wrong 1", "worker1", "wrong-password", 401, "invalid_credentials")
	expect("wrong 2", "worker1", "wrong-password", 401, "invalid_credentials")
	expect("right after 2 failures", "worker1", nodetest.Password, 200, "")
	for i := range 3 {
		expect("wrong again "+strconv.Itoa(i), "WORKER1", "wrong-password", 401, "invalid_credentials") // case does not help
	}
	st, retry, m := login("worker1", nodetest.Password)
	if st != 429 || m["code"] != "too_many_attempts" || retry != "60" || m["retryAfter"] != float64(60) {
		t.Fatalf("locked account: %d Retry-After %q %v", st, retry, m)
	}
	// Another account from the same address still logs in (5 failures from it so far) …
	expect("another account", "worker2", nodetest.Password, 200, "")
	// … until the sixth failure, on an account that does not even exist.
	expect("unknown login", "nobody", "guess-guess", 401, "invalid_credentials")
	expect("address locked", "worker2", nodetest.Password, 429, "too_many_attempts")
	clock.Advance(61 * time.Second)
	expect("after the window", "worker1", nodetest.Password, 200, "")
	expect("address open again", "worker2", nodetest.Password, 200, "")
}
