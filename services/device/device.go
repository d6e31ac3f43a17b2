// Package device keeps each handset's registration for pushes: its FCM token,
// platform, app version and locale, one record per device, several devices per user.
// A device writes only its own record, so a key-value bucket (last write wins) holds
// them; the notifier reads them.
package device

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
)

// Platforms a device may have.
var Platforms = []string{"android", "ios", "web"}

// Registration is what a device says about itself.
type Registration struct {
	PushToken  *string `json:"pushToken"`
	Platform   string  `json:"platform"`
	AppVersion string  `json:"appVersion"`
	Locale     string  `json:"locale,omitempty"`
}

// Device is a stored registration.
type Device struct {
	Registration
	DeviceID  string    `json:"deviceId"`
	UserID    string    `json:"userId"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Service stores registrations.
type Service struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// New returns the service on the devices bucket.
func New(kv jetstream.KeyValue, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{kv: kv, now: now}
}

// Register stores the caller's device. A device registers only itself.
func (s *Service) Register(ctx context.Context, a org.Actor, deviceID string, r Registration) (*Device, error) {
	if deviceID != a.DeviceID {
		return nil, fault.New(fault.Forbidden, "device_mismatch", "a device registers only itself: the path must be the token's deviceId")
	}
	f := fault.Fields{}
	if r.PushToken != nil && (len(*r.PushToken) == 0 || len(*r.PushToken) > 4096) {
		f.Add("pushToken", "1 to 4096 characters, or null to stop pushes")
	}
	if !slices.Contains(Platforms, r.Platform) {
		f.Add("platform", "one of android, ios, web")
	}
	if n := utf8.RuneCountInString(r.AppVersion); n == 0 || n > 50 {
		f.Add("appVersion", "1 to 50 characters")
	}
	if len(r.Locale) > 35 {
		f.Add("locale", "a BCP 47 tag such as zh-CN")
	}
	if err := f.Err("invalid_request", "invalid device registration"); err != nil {
		return nil, err
	}
	d := Device{Registration: r, DeviceID: deviceID, UserID: a.UserID, UpdatedAt: s.now().UTC()}
	data, _ := json.Marshal(d)
	if _, err := s.kv.Put(ctx, deviceID, data); err != nil {
		return nil, fault.Wrap(err, "store device")
	}
	return &d, nil
}

// Get returns a device's registration; nil when it never registered.
func (s *Service) Get(ctx context.Context, deviceID string) (*Device, error) {
	e, err := s.kv.Get(ctx, deviceID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fault.Wrap(err, "read device")
	}
	var d Device
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return nil, fault.Wrap(err, "decode device")
	}
	return &d, nil
}

// Silence stops pushes to a device whose session ended: its push token is removed,
// unless the device is registered to another user by now.
func (s *Service) Silence(ctx context.Context, deviceID, userID string) error {
	for attempt := 0; attempt < 5; attempt++ {
		e, err := s.kv.Get(ctx, deviceID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fault.Wrap(err, "read device")
		}
		var d Device
		if json.Unmarshal(e.Value(), &d) != nil || d.UserID != userID || d.PushToken == nil {
			return nil
		}
		d.PushToken = nil
		d.UpdatedAt = s.now().UTC()
		data, _ := json.Marshal(d)
		if _, err := s.kv.Update(ctx, deviceID, data, e.Revision()); err == nil {
			return nil
		}
	}
	return fault.New(fault.Conflict, "busy", "the device registration is changing")
}
