package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/services/notify"
	"github.com/gridkeeper/gridkeeper/services/notify/notifytest"
)

// The real firebase SDK against the fake FCM: the exact body of a sync poke, the
// bearer token, and UNREGISTERED reported per message.
func TestFCMSendsSyncPokes(t *testing.T) {
	fake := notifytest.NewFCM(t)
	fake.Unregister("tok-dead")
	s := fake.Sender(t)
	msgs := []notify.Message{
		{DeviceID: "phone-a", Token: "tok-a", Data: notify.SyncData},
		{DeviceID: "phone-dead", Token: "tok-dead", Data: notify.SyncData},
		{DeviceID: "phone-b", Token: "tok-b", Data: notify.SyncData},
	}
	res := s.Send(context.Background(), msgs)
	if len(res) != 3 || res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("results: %+v", res)
	}
	if res[1].Err == nil || !res[1].Unregistered {
		t.Errorf("a dead token must come back unregistered: %+v", res[1])
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests: %d, want 2", len(reqs))
	}
	// SendEach sends its messages concurrently: find the one to tok-a.
	body := ""
	for _, r := range reqs {
		if r.Token == "tok-a" {
			body = r.Body
		}
	}
	var got, want any
	_ = json.Unmarshal([]byte(body), &got)
	_ = json.Unmarshal([]byte(`{"message":{"token":"tok-a","data":{"type":"sync"},
		"android":{"priority":"high"},
		"apns":{"headers":{"apns-priority":"5","apns-push-type":"background"},"payload":{"aps":{"content-available":1}}}}}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request body:\n got %s\nwant %v", body, want)
	}
	for _, a := range fake.Authorizations() {
		if a != "Bearer test-token" {
			t.Errorf("authorization: %q", a)
		}
	}
}

func TestFCMConfigErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := notify.NewFCM(ctx, notify.FCMConfig{}); err == nil {
		t.Error("no credentials must be refused")
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"type":"authorized_user"}`), 0o600)
	if _, err := notify.NewFCM(ctx, notify.FCMConfig{CredentialsFile: bad}); err == nil || !strings.Contains(err.Error(), "service account") {
		t.Errorf("a key that is not a service account: %v", err)
	}
	if _, err := notify.NewFCM(ctx, notify.FCMConfig{CredentialsFile: filepath.Join(dir, "missing.json")}); err == nil {
		t.Error("a missing key file must be refused")
	}
}

// Without credentials, pushes go to the log (the local outbox of the demo).
func TestLocalSenderLogs(t *testing.T) {
	var buf bytes.Buffer
	s := notify.Local{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	res := s.Send(context.Background(), []notify.Message{{DeviceID: "phone-a", Token: "t", Data: notify.SyncData}})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("results: %+v", res)
	}
	if !strings.Contains(buf.String(), "device=phone-a") || !strings.Contains(buf.String(), "type:sync") {
		t.Errorf("log: %s", buf.String())
	}
}
