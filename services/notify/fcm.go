package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
)

// FCMConfig says how to reach Firebase Cloud Messaging.
type FCMConfig struct {
	// CredentialsFile is a service account key (JSON) of the Firebase project.
	CredentialsFile string
	// ProjectID defaults to the project_id of the credentials.
	ProjectID string
	// Endpoint replaces Google's (a proxy inside a closed network; tests' fake FCM).
	Endpoint string
	// TokenSource replaces the credentials (tests: a static token).
	TokenSource oauth2.TokenSource
}

// FCM sends through Firebase Cloud Messaging with the firebase SDK.
type FCM struct {
	client *messaging.Client
}

// sendEachMax is the most messages SendEach takes at once.
const sendEachMax = 500

// NewFCM makes the FCM sender.
func NewFCM(ctx context.Context, c FCMConfig) (*FCM, error) {
	var opts []option.ClientOption
	switch {
	case c.TokenSource != nil:
		opts = append(opts, option.WithTokenSource(c.TokenSource))
	case c.CredentialsFile != "":
		data, err := os.ReadFile(c.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("FCM credentials: %w", err)
		}
		var key struct {
			Type      string `json:"type"`
			ProjectID string `json:"project_id"`
		}
		if err := json.Unmarshal(data, &key); err != nil || key.Type != "service_account" {
			return nil, errors.New("FCM credentials: not a service account key (JSON with \"type\": \"service_account\")")
		}
		if c.ProjectID == "" {
			c.ProjectID = key.ProjectID
		}
		opts = append(opts, option.WithCredentialsJSON(data)) // checked above: a service account key
	default:
		return nil, errors.New("FCM: credentials are required")
	}
	if c.ProjectID == "" {
		return nil, errors.New("FCM: no project id (set it, or use credentials that carry one)")
	}
	if c.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(c.Endpoint))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: c.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("FCM: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("FCM: %w", err)
	}
	return &FCM{client: client}, nil
}

// Send sends msgs as high-priority data messages, up to 500 per SendEach.
func (f *FCM) Send(ctx context.Context, msgs []Message) []Result {
	out := make([]Result, len(msgs))
	for i := 0; i < len(msgs); i += sendEachMax {
		part := msgs[i:min(len(msgs), i+sendEachMax)]
		fm := make([]*messaging.Message, len(part))
		for k, m := range part {
			fm[k] = &messaging.Message{
				Token:   m.Token,
				Data:    m.Data,
				Android: &messaging.AndroidConfig{Priority: "high"},
				// A background (silent) push on iOS: content-available, priority 5.
				APNS: &messaging.APNSConfig{
					Headers: map[string]string{"apns-priority": "5", "apns-push-type": "background"},
					Payload: &messaging.APNSPayload{Aps: &messaging.Aps{ContentAvailable: true}},
				},
			}
		}
		br, err := f.client.SendEach(ctx, fm)
		if err != nil {
			for k := range part {
				out[i+k] = Result{Err: err, Retryable: true}
			}
			continue
		}
		for k, r := range br.Responses {
			if !r.Success {
				out[i+k] = failure(r.Error)
			}
		}
	}
	return out
}

// failure classifies a failed send. The SDK itself retries a 503 (honouring
// Retry-After) a few times; what still fails with 429 or 5xx is retried later by the
// pusher, after the Retry-After the service gave.
func failure(err error) Result {
	r := Result{Err: err, Unregistered: messaging.IsUnregistered(err)}
	if messaging.IsQuotaExceeded(err) || messaging.IsUnavailable(err) || messaging.IsInternal(err) {
		r.Retryable = true
	}
	if resp := errorutils.HTTPResponse(err); resp != nil {
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			r.Retryable = true
		}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			r.RetryAfter = time.Duration(secs) * time.Second
		} else if at, err := http.ParseTime(resp.Header.Get("Retry-After")); err == nil {
			r.RetryAfter = time.Until(at)
		}
	}
	return r
}
