// Package notifytest is a local fake of Firebase Cloud Messaging's HTTP v1 API, for
// tests that drive the real firebase SDK (DESIGN "Push": option.WithEndpoint plus a
// static token source).
package notifytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/services/notify"
	"golang.org/x/oauth2"
)

// Project is the Firebase project id the fake serves.
const Project = "gridkeeper-test"

// Request is one message the fake received.
type Request struct {
	Token string
	Data  map[string]string
	Body  string // the request body as sent
	At    time.Time
}

// FCM is the fake server.
type FCM struct {
	*httptest.Server

	mu           sync.Mutex
	requests     []Request
	unregistered map[string]bool
	auth         []string
	failures     []failure // answered before any success, in order
	attempts     []Attempt
}

type failure struct {
	typ        string
	status     int
	retryAfter string
}

// Fail makes the fake answer the next n messages of payload type typ ("" any) with
// status (429 or 5xx) and a Retry-After header when retryAfter is not "".
func (f *FCM) Fail(typ string, n, status int, retryAfter string) {
	f.mu.Lock()
	for i := 0; i < n; i++ {
		f.failures = append(f.failures, failure{typ, status, retryAfter})
	}
	f.mu.Unlock()
}

// NewFCM starts a fake; it stops when the test ends.
func NewFCM(t testing.TB) *FCM {
	f := &FCM{unregistered: map[string]bool{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// Unregister makes the fake answer UNREGISTERED for token from now on.
func (f *FCM) Unregister(token string) {
	f.mu.Lock()
	f.unregistered[token] = true
	f.mu.Unlock()
}

// Attempt is one request as the fake answered it.
type Attempt struct {
	At     time.Time
	Status int
	Type   string // the payload's type
}

// Attempts returns every request with its answer, in order.
func (f *FCM) Attempts() []Attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Attempt(nil), f.attempts...)
}

// Requests returns the messages received so far.
func (f *FCM) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// PerToken counts the messages received per device token.
func (f *FCM) PerToken() map[string]int {
	out := map[string]int{}
	for _, r := range f.Requests() {
		out[r.Token]++
	}
	return out
}

// PerTokenOf counts the messages of a payload type ("sync", "notification") per
// device token.
func (f *FCM) PerTokenOf(typ string) map[string]int {
	out := map[string]int{}
	for _, r := range f.Requests() {
		if r.Data["type"] == typ {
			out[r.Token]++
		}
	}
	return out
}

// Of returns the messages of a payload type sent to token.
func (f *FCM) Of(typ, token string) []Request {
	var out []Request
	for _, r := range f.Requests() {
		if r.Data["type"] == typ && r.Token == token {
			out = append(out, r)
		}
	}
	return out
}

// Authorizations returns the Authorization headers received.
func (f *FCM) Authorizations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...)
}

// Sender is the real FCM sender of the firebase SDK, pointed at the fake.
func (f *FCM) Sender(t testing.TB) *notify.FCM {
	s, err := notify.NewFCM(context.Background(), notify.FCMConfig{ProjectID: Project, Endpoint: f.URL + "/v1",
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "test-token"})})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *FCM) serve(w http.ResponseWriter, r *http.Request) {
	want := "/v1/projects/" + Project + "/messages:send"
	if r.Method != http.MethodPost || r.URL.Path != want {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Message struct {
			Token string            `json:"token"`
			Data  map[string]string `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Message.Token == "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
		return
	}
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	typ := req.Message.Data["type"]
	if len(f.failures) > 0 && (f.failures[0].typ == "" || f.failures[0].typ == typ) {
		fl := f.failures[0]
		f.failures = f.failures[1:]
		f.attempts = append(f.attempts, Attempt{At: time.Now(), Status: fl.status, Type: typ})
		f.mu.Unlock()
		if fl.retryAfter != "" {
			w.Header().Set("Retry-After", fl.retryAfter)
		}
		status := map[int]string{429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}[fl.status]
		code := map[int]string{429: "QUOTA_EXCEEDED", 500: "INTERNAL", 503: "UNAVAILABLE"}[fl.status]
		writeError(w, fl.status, status, code)
		return
	}
	f.attempts = append(f.attempts, Attempt{At: time.Now(), Status: 200, Type: typ})
	dead := f.unregistered[req.Message.Token]
	if !dead {
		f.requests = append(f.requests, Request{Token: req.Message.Token, Data: req.Message.Data, Body: string(body), At: time.Now()})
	}
	n := len(f.requests)
	f.mu.Unlock()
	if dead {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "UNREGISTERED")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"name":"projects/%s/messages/%d"}`, Project, n)
}

func writeError(w http.ResponseWriter, code int, status, fcmCode string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":"%s","status":"%s","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"%s"}]}}`,
		code, strings.ToLower(fcmCode), status, fcmCode)
}
