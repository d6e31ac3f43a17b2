package node_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/auth"
)

type errBody struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

func wantErr(t *testing.T, what string, st int, body []byte, wantSt int, wantCode string) {
	t.Helper()
	var e errBody
	_ = jsonUnmarshal(body, &e)
	if st != wantSt || (wantCode != "" && e.Code != wantCode) || e.Message == "" {
		t.Errorf("%s: got %d %s, want %d with code %q and a message", what, st, body, wantSt, wantCode)
	}
}

func TestAuthRefusals(t *testing.T) {
	clock := nodetest.NewClock()
	h := nodetest.Start(t, func(c *node.Config, o *node.Options) { o.Now = clock.Now })
	h.Org(2)
	anon := h.Anon()

	t.Run("wrong password and unknown login", func(t *testing.T) {
		for _, login := range []string{"worker1", "nobody"} {
			st, body := anon.Raw("POST", "/v1/auth/login", map[string]string{"login": login, "password": "wrong-password", "deviceId": "d1"}, nil)
			wantErr(t, login, st, body, 401, "invalid_credentials")
		}
	})
	t.Run("missing and malformed tokens", func(t *testing.T) {
		st, body := anon.Raw("GET", "/v1/me", nil, nil)
		wantErr(t, "no token", st, body, 401, "missing_token")
		st, body = anon.Raw("GET", "/v1/me", nil, map[string]string{"Authorization": "Bearer not.a.jwt"})
		wantErr(t, "garbage token", st, body, 401, "invalid_token")
	})
	t.Run("forged algorithms and keys", func(t *testing.T) {
		w := h.Login("worker1", "phone-a")
		var c auth.Claims
		if _, _, err := jwt.NewParser().ParseUnverified(w.Token, &c); err != nil {
			t.Fatal(err)
		}
		none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, c).SignedString([]byte(h.Cfg.JWTKey))
		other, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("another-key-another-key-another-key!!"))
		future := c
		future.NotBefore = jwt.NewNumericDate(clock.Now().Add(time.Hour))
		notYet, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, future).SignedString([]byte(h.Cfg.JWTKey))
		noExp := c
		noExp.ExpiresAt = nil
		never, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, noExp).SignedString([]byte(h.Cfg.JWTKey))
		for name, tok := range map[string]string{"none": none, "HS512": hs512, "wrong key": other, "not yet valid": notYet, "no expiry": never} {
			st, body := anon.Raw("GET", "/v1/me", nil, map[string]string{"Authorization": "Bearer " + tok})
			wantErr(t, name, st, body, 401, "invalid_token")
		}
		if st := w.Do("GET", "/v1/me", nil, nil); st != 200 {
			t.Errorf("the genuine token: %d", st)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		w := h.Login("worker1", "phone-b")
		clock.Advance(h.Cfg.AccessTTL + time.Minute)
		st, body := w.Raw("GET", "/v1/me", nil, nil)
		wantErr(t, "expired", st, body, 401, "invalid_token")
	})
	t.Run("token of another device", func(t *testing.T) {
		w := h.Login("worker1", "phone-c")
		st, body := w.Raw("GET", "/v1/me", nil, map[string]string{"X-Device-Id": "phone-zzz"})
		wantErr(t, "header of another device", st, body, 401, "device_mismatch")
		id := newID(t)
		st, body = w.Raw("POST", "/v1/sync/push", map[string]any{"clientId": "phone-zzz", "schemaVersion": 1,
			"mutations": []any{map[string]any{"id": 1, "name": "incident.report", "args": nodetest.Report(id)}}}, nil)
		wantErr(t, "push as another device", st, body, 403, "device_mismatch")
		st, body = w.Raw("POST", "/v1/sync/pull", map[string]any{"clientId": "phone-zzz", "schemaVersion": 1}, nil)
		wantErr(t, "pull as another device", st, body, 403, "device_mismatch")
		var tok auth.Tokens
		st, body = anon.Raw("POST", "/v1/auth/refresh", map[string]string{"refreshToken": w.Refresh, "deviceId": "phone-zzz"}, nil)
		wantErr(t, "refresh from another device", st, body, 401, "invalid_refresh")
		if st := anon.Do("POST", "/v1/auth/refresh", map[string]string{"refreshToken": w.Refresh, "deviceId": "phone-c"}, &tok); st != 200 {
			t.Errorf("refresh from the right device after a refused one: %d", st)
		}
		if n, _ := h.Node.Incidents.Count(context.Background()); n != 0 {
			t.Errorf("a refused push stored %d incidents", n)
		}
	})
	t.Run("refresh rotation and reuse", func(t *testing.T) {
		w := h.Login("worker2", "phone-d")
		if st := w.Do("PUT", "/v1/devices/phone-d", map[string]any{"pushToken": "tok-d", "platform": "android", "appVersion": "1"}, nil); st != 200 {
			t.Fatalf("register: %d", st)
		}
		var t1 auth.Tokens
		if st := anon.Do("POST", "/v1/auth/refresh", map[string]string{"refreshToken": w.Refresh, "deviceId": "phone-d"}, &t1); st != 200 || t1.RefreshToken == w.Refresh {
			t.Fatalf("first refresh: %d, rotated=%v", st, t1.RefreshToken != w.Refresh)
		}
		st, body := anon.Raw("POST", "/v1/auth/refresh", map[string]string{"refreshToken": w.Refresh, "deviceId": "phone-d"}, nil)
		wantErr(t, "reused refresh token", st, body, 401, "refresh_reused")
		st, body = anon.Raw("POST", "/v1/auth/refresh", map[string]string{"refreshToken": t1.RefreshToken, "deviceId": "phone-d"}, nil)
		wantErr(t, "newest refresh token after reuse", st, body, 401, "invalid_refresh")
		st, body = anon.Raw("GET", "/v1/me", nil, map[string]string{"Authorization": "Bearer " + t1.AccessToken})
		wantErr(t, "access token of the revoked session", st, body, 401, "session_revoked")
		// A stolen session's device gets no more pushes.
		if d, err := h.Node.Devices.Get(context.Background(), "phone-d"); err != nil || d == nil || d.PushToken != nil {
			t.Errorf("the revoked session's device keeps its push token: %+v %v", d, err)
		}
	})
	t.Run("logout", func(t *testing.T) {
		w := h.Login("worker2", "phone-e")
		if st := w.Do("POST", "/v1/auth/logout", nil, nil); st != http.StatusNoContent {
			t.Fatalf("logout: %d", st)
		}
		st, body := w.Raw("GET", "/v1/me", nil, nil)
		wantErr(t, "after logout", st, body, 401, "session_revoked")
		st, body = anon.Raw("POST", "/v1/auth/refresh", map[string]string{"refreshToken": w.Refresh, "deviceId": "phone-e"}, nil)
		wantErr(t, "refresh after logout", st, body, 401, "invalid_refresh")
	})
	t.Run("another user on the device", func(t *testing.T) {
		w := h.Login("worker2", "phone-g")
		if st := w.Do("PUT", "/v1/devices/phone-g", map[string]any{"pushToken": "tok-g", "platform": "android", "appVersion": "1"}, nil); st != 200 {
			t.Fatalf("register: %d", st)
		}
		h.Login("worker2", "phone-g") // the same user again keeps the pushes
		if d, _ := h.Node.Devices.Get(context.Background(), "phone-g"); d == nil || d.PushToken == nil {
			t.Fatalf("a second login of the same user silenced the device")
		}
		h.Login("worker1", "phone-g") // worker2's pushes must not reach worker1's hands
		if d, _ := h.Node.Devices.Get(context.Background(), "phone-g"); d == nil || d.PushToken != nil {
			t.Errorf("another user's login kept the old user's push token: %+v", d)
		}
	})
	t.Run("roles", func(t *testing.T) {
		w := h.Login("worker1", "phone-f")
		st, body := w.Raw("POST", "/v1/admin/units", map[string]string{"id": "110105001001009", "name": "x"}, nil)
		wantErr(t, "worker creating a unit", st, body, 403, "forbidden")
	})
}

// Scope: what a user may read and change is its home unit's subtree.
func TestScopeOfReadsAndCommands(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(2)
	w1 := h.Login("worker1", "p1")
	id := newID(t)
	if _, r := w1.Push(w1.Queue([]string{"incident.report"}, []any{nodetest.Report(id)})); r.Results[0].Status != "applied" {
		t.Fatalf("report: %+v", r)
	}
	for _, tc := range []struct {
		login string
		want  int
	}{
		{"worker1", 200}, {"dispatcher", 200}, {"street", 200}, {"district", 200},
		{"worker2", 404}, {"workerb", 404}, {"dispatcherb", 404},
	} {
		c := h.Login(tc.login, "dev-"+tc.login)
		st, body := c.Raw("GET", "/v1/incidents/"+id, nil, nil)
		if st != tc.want {
			t.Errorf("%s reads an incident of grid A1: %d %s, want %d", tc.login, st, body, tc.want)
		}
	}
	accept := func(login string) (string, string) {
		c := h.Login(login, "acc-"+login)
		_, r := c.Push(c.Queue([]string{"incident.accept"}, []any{map[string]string{"incidentId": id}}))
		if len(r.Results) != 1 {
			t.Fatalf("%s accept: %+v", login, r)
		}
		code := ""
		if r.Results[0].Error != nil {
			code = r.Results[0].Error.Code
		}
		return r.Results[0].Status, code
	}
	for _, tc := range []struct{ login, status, code string }{
		{"worker2", "rejected", "not_found"},     // another grid: not even told it exists
		{"dispatcherb", "rejected", "not_found"}, // a sibling community
		{"worker1", "rejected", "forbidden"},     // sees it, but a worker cannot accept
		{"dispatcher", "applied", ""},
		{"street", "rejected", "invalid_transition"}, // already accepted
	} {
		st, code := accept(tc.login)
		if st != tc.status || code != tc.code {
			t.Errorf("%s accepts: %s %s, want %s %s", tc.login, st, code, tc.status, tc.code)
		}
	}
	c := h.Login("worker1", "p1b")
	var inc struct {
		Status, FirstOwnerID string
		DueAt                *time.Time
	}
	c.Do("GET", "/v1/incidents/"+id, nil, &inc)
	if inc.Status != "accepted" || inc.FirstOwnerID != "dispatcher" || inc.DueAt == nil {
		t.Errorf("after accept: %+v", inc)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	w := h.Login("worker1", "p1")
	w.Push(w.Queue([]string{"incident.report"}, []any{nodetest.Report(newID(t))}))
	anon := h.Anon()
	for path, want := range map[string]string{
		"/healthz": `"ok"`,
		"/readyz":  `"ok"`,
		"/metrics": "gridd_commands_applied_total",
	} {
		st, body := anon.Raw("GET", path, nil, nil)
		if st != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %.200s", path, st, body)
		}
	}
	_, body := anon.Raw("GET", "/metrics", nil, nil)
	if !strings.Contains(string(body), `gridd_http_request_duration_seconds_count{method="POST",route="/v1/sync/push",status="200"} 1`) {
		t.Errorf("push not counted in /metrics: %s", grepLines(string(body), "sync/push"))
	}
	st, body := anon.Raw("GET", "/nowhere", nil, nil)
	wantErr(t, "unknown route", st, body, 404, "not_found")
}

// Logging in again on a device ends its previous session, and tells a reinstalled app
// where its queue stands so its next mutations are not taken for re-sends.
func TestLoginAgainOnADevice(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	first := h.Login("worker1", "phone-x")
	first.Push(first.Queue([]string{"incident.report", "incident.report"}, []any{nodetest.Report(newID(t)), nodetest.Report(newID(t))}))
	var tok struct {
		AccessToken    string
		LastMutationID *int64
	}
	st := h.Anon().Do("POST", "/v1/auth/login", map[string]string{"login": "worker1", "password": nodetest.Password, "deviceId": "phone-x"}, &tok)
	if st != 200 || tok.LastMutationID == nil || *tok.LastMutationID != 2 {
		t.Fatalf("second login: %d, lastMutationId %v, want 2", st, tok.LastMutationID)
	}
	st, body := first.Raw("GET", "/v1/me", nil, nil)
	wantErr(t, "the first session after a second login on the device", st, body, 401, "session_revoked")
	other := h.Login("worker1", "phone-y")
	if st := other.Do("GET", "/v1/me", nil, nil); st != 200 {
		t.Errorf("a session on another device stays: %d", st)
	}
	var fresh struct{ LastMutationID *int64 }
	h.Anon().Do("POST", "/v1/auth/login", map[string]string{"login": "worker1", "password": nodetest.Password, "deviceId": "phone-new"}, &fresh)
	if fresh.LastMutationID == nil || *fresh.LastMutationID != 0 {
		t.Errorf("a new device starts at 0: %v", fresh.LastMutationID)
	}
}

// A device registers itself for pushes (and only itself).
func TestDeviceRegistration(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	w := h.Login("worker1", "phone-r")
	var d struct {
		DeviceID, UserID, Platform, Locale string
		PushToken                          *string
	}
	st := w.Do("PUT", "/v1/devices/phone-r", map[string]any{"pushToken": "fcm-token-1", "platform": "android", "appVersion": "1.2.0", "locale": "zh-CN"}, &d)
	if st != 200 || d.DeviceID != "phone-r" || d.UserID != "worker1" || d.PushToken == nil || *d.PushToken != "fcm-token-1" {
		t.Fatalf("register: %d %+v", st, d)
	}
	stored, err := h.Node.Devices.Get(context.Background(), "phone-r")
	if err != nil || stored == nil || stored.Locale != "zh-CN" {
		t.Errorf("stored: %+v %v", stored, err)
	}
	// null stops pushes.
	if st := w.Do("PUT", "/v1/devices/phone-r", map[string]any{"pushToken": nil, "platform": "android", "appVersion": "1.2.0"}, &d); st != 200 || d.PushToken != nil {
		t.Errorf("null token: %d %+v", st, d)
	}
	for name, tc := range map[string]struct {
		path   string
		body   map[string]any
		status int
		code   string
	}{
		"another device": {"/v1/devices/phone-zzz", map[string]any{"platform": "android", "appVersion": "1"}, 403, "device_mismatch"},
		"bad platform":   {"/v1/devices/phone-r", map[string]any{"platform": "symbian", "appVersion": "1"}, 400, "invalid_request"},
		"no app version": {"/v1/devices/phone-r", map[string]any{"platform": "ios"}, 400, "invalid_request"},
		"huge token":     {"/v1/devices/phone-r", map[string]any{"pushToken": strings.Repeat("x", 5000), "platform": "ios", "appVersion": "1"}, 400, "invalid_request"},
	} {
		st, body := w.Raw("PUT", tc.path, tc.body, nil)
		wantErr(t, name, st, body, tc.status, tc.code)
	}
}
