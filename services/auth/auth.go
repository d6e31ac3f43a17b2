// Package auth owns logins and sessions: password checks, short-lived access tokens
// (JWT, HS256 pinned) bound to a device, and rotating refresh tokens with reuse
// detection. Sessions live in a JetStream key-value bucket, whose compare-and-set
// makes rotation safe across goroutines and gridd instances without relying on the
// database for concurrency.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

// Users is what auth needs of the directory.
type Users interface {
	User(ctx context.Context, login string) (*org.User, error)
}

// Queues tells where a device's mutation queue stands on the server.
type Queues interface {
	LastAccepted(ctx context.Context, deviceID string) (int64, error)
}

// Options configures the service.
type Options struct {
	Key        []byte
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
	// BcryptCost is the cost of stored hashes; an unknown login is compared against a
	// dummy hash of the same cost, so it takes as long as a known one.
	BcryptCost int
	// Throttle, when set, limits failed logins per account and per address.
	Throttle *Throttle
	// SessionEnded is told when a device's session ends for good — logout, a stolen
	// refresh token, or another user logging in on the device — so its pushes stop.
	SessionEnded func(ctx context.Context, deviceID, userID string)
}

// Service issues and checks tokens.
type Service struct {
	users  Users
	queues Queues
	kv     jetstream.KeyValue
	opt    Options
	dummy  []byte // a hash to compare against when the login is unknown (constant time)
}

// New returns the auth service.
func New(users Users, queues Queues, kv jetstream.KeyValue, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	cost := opt.BcryptCost
	if cost < bcrypt.MinCost {
		cost = bcrypt.DefaultCost
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("not a password"), cost)
	return &Service{users: users, queues: queues, kv: kv, opt: opt, dummy: dummy}
}

// HashPassword hashes a password with bcrypt at cost.
func HashPassword(pw string, cost int) (string, error) {
	if len(pw) < 8 || len(pw) > 72 {
		return "", fault.New(fault.Invalid, "weak_password", "a password has 8 to 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fault.Wrap(err, "hash password")
	}
	return string(h), nil
}

// session is the stored state of one login on one device.
type session struct {
	ID         string    `json:"id"`
	UserID     string    `json:"userId"`
	DeviceID   string    `json:"deviceId"`
	Platform   string    `json:"platform,omitempty"`
	AppVersion string    `json:"appVersion,omitempty"`
	Refresh    string    `json:"refresh"`        // sha256 of the current refresh secret
	Used       []string  `json:"used,omitempty"` // hashes of rotated-out secrets (reuse detection)
	Revoked    string    `json:"revoked,omitempty"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
}

// Claims are the access token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	UnitID   string   `json:"unit"`
	DeviceID string   `json:"did"`
	Session  string   `json:"sid"`
}

// Tokens is what login and refresh return.
type Tokens struct {
	AccessToken  string   `json:"accessToken"`
	RefreshToken string   `json:"refreshToken"`
	ExpiresIn    int      `json:"expiresIn"`
	User         UserInfo `json:"user"`
	// LastMutationID, at login, is the highest mutation id of the device the server
	// accepted: a reinstalled app numbers its queue from the next one.
	LastMutationID *int64 `json:"lastMutationId,omitempty"`
}

// UserInfo describes the caller.
type UserInfo struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Roles  []string `json:"roles"`
	UnitID string   `json:"unitId"`
}

// LoginRequest is the body of POST /v1/auth/login.
type LoginRequest struct {
	Login      string `json:"login"`
	Password   string `json:"password"`
	DeviceID   string `json:"deviceId"`
	Platform   string `json:"platform"`
	AppVersion string `json:"appVersion"`
}

// ValidDeviceID reports whether a device id is usable: it names a handset's queue and
// appears in subjects, so 1–64 of a-z A-Z 0-9 '-' '_'.
func ValidDeviceID(s string) bool { return len(s) <= 64 && command.ValidToken(s) }

var errBadLogin = fault.New(fault.Unauthorized, "invalid_credentials", "wrong login or password")

// Login checks a password and opens a session on a device; addr is the caller's
// network address (for the throttle).
func (s *Service) Login(ctx context.Context, r LoginRequest, addr string) (*Tokens, error) {
	f := fault.Fields{}
	if r.Login == "" || len(r.Login) > 64 {
		f.Add("login", "required, at most 64 characters")
	}
	if r.Password == "" || len(r.Password) > 128 {
		f.Add("password", "required, at most 128 characters")
	}
	if !ValidDeviceID(r.DeviceID) {
		f.Add("deviceId", "1 to 64 characters: letters, digits, - and _")
	}
	if len(r.Platform) > 32 || len(r.AppVersion) > 32 {
		f.Add("platform", "platform and appVersion: at most 32 characters")
	}
	if err := f.Err("invalid_request", "login request is invalid"); err != nil {
		return nil, err
	}
	now := s.opt.Now()
	if t := s.opt.Throttle; t != nil {
		if err := t.check(ctx, now, r.Login, addr); err != nil {
			s.opt.Logger.Warn("login refused: locked out", "login", r.Login, "device", r.DeviceID, "addr", addr)
			return nil, err
		}
	}
	u, err := s.users.User(ctx, strings.ToLower(r.Login))
	if err != nil {
		return nil, err
	}
	hash := s.dummy
	if u != nil {
		hash = []byte(u.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(r.Password)) != nil || u == nil {
		s.opt.Logger.Warn("login refused", "login", r.Login, "device", r.DeviceID, "addr", addr)
		if t := s.opt.Throttle; t != nil {
			locked, err := t.failed(ctx, now, r.Login, addr)
			if err != nil {
				return nil, err
			}
			if locked {
				s.opt.Logger.Warn("login locked out", "login", r.Login, "addr", addr, "for", t.Window)
			}
		}
		return nil, errBadLogin
	}
	if t := s.opt.Throttle; t != nil {
		t.succeeded(ctx, r.Login)
	}
	if u.Disabled {
		return nil, fault.New(fault.Forbidden, "account_disabled", "this account is disabled")
	}
	secret, hashed := newSecret()
	sess := session{ID: uuid.NewString(), UserID: u.ID, DeviceID: r.DeviceID, Platform: r.Platform,
		AppVersion: r.AppVersion, Refresh: hashed, Created: now, Expires: now.Add(s.opt.RefreshTTL)}
	data, _ := json.Marshal(sess)
	if _, err := s.kv.Create(ctx, sess.ID, data); err != nil {
		return nil, fault.Wrap(err, "store session")
	}
	if err := s.replaceDeviceSession(ctx, sess.DeviceID, sess.ID, sess.UserID); err != nil {
		return nil, err
	}
	t, err := s.tokens(u, sess, secret)
	if err != nil {
		return nil, err
	}
	if s.queues != nil {
		last, err := s.queues.LastAccepted(ctx, sess.DeviceID)
		if err != nil {
			return nil, err
		}
		t.LastMutationID = &last
	}
	return t, nil
}

// replaceDeviceSession makes sid the device's session and revokes the one before it:
// logging in again on a device ends its previous session.
func (s *Service) replaceDeviceSession(ctx context.Context, device, sid, user string) error {
	key := "device." + device
	for attempt := 0; attempt < 5; attempt++ {
		e, err := s.kv.Get(ctx, key)
		var prev string
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fault.Wrap(err, "read device session")
		default:
			prev, rev = string(e.Value()), e.Revision()
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, []byte(sid))
		} else {
			_, err = s.kv.Update(ctx, key, []byte(sid), rev)
		}
		if err != nil {
			if isWrongRevision(err) || errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return fault.Wrap(err, "store device session")
		}
		if prev != "" && prev != sid {
			old, err := s.revoke(ctx, prev, "replaced")
			if err == nil && old != nil && old.UserID != user {
				s.ended(ctx, old) // another user on this device: the old one's pushes stop
			}
			return err
		}
		return nil
	}
	return fault.New(fault.Unavailable, "busy", "the device is logging in elsewhere; retry")
}

// RefreshRequest is the body of POST /v1/auth/refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refreshToken"`
	DeviceID     string `json:"deviceId"`
}

var errBadRefresh = fault.New(fault.Unauthorized, "invalid_refresh", "the refresh token is not valid; log in again")

// Refresh rotates a refresh token. Presenting one that was already rotated out is taken
// as theft: the device's session is revoked.
func (s *Service) Refresh(ctx context.Context, r RefreshRequest) (*Tokens, error) {
	sid, secret, ok := strings.Cut(r.RefreshToken, ".")
	if !ok || uuid.Validate(sid) != nil || !ValidDeviceID(r.DeviceID) {
		return nil, errBadRefresh
	}
	for attempt := 0; attempt < 5; attempt++ {
		e, err := s.kv.Get(ctx, sid)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, errBadRefresh
		}
		if err != nil {
			return nil, fault.Wrap(err, "read session")
		}
		var sess session
		if err := json.Unmarshal(e.Value(), &sess); err != nil {
			return nil, fault.Wrap(err, "decode session")
		}
		now := s.opt.Now()
		if sess.Revoked != "" || now.After(sess.Expires) {
			return nil, errBadRefresh
		}
		if sess.DeviceID != r.DeviceID {
			s.opt.Logger.Warn("refresh from another device refused", "session", sid, "device", r.DeviceID)
			return nil, errBadRefresh
		}
		h := hashSecret(secret)
		if subtle.ConstantTimeCompare([]byte(h), []byte(sess.Refresh)) != 1 {
			for _, used := range sess.Used {
				if subtle.ConstantTimeCompare([]byte(h), []byte(used)) == 1 {
					s.opt.Logger.Warn("refresh token reused: session revoked", "session", sid, "user", sess.UserID)
					sess.Revoked = "refresh_reused"
					data, _ := json.Marshal(sess)
					if _, err := s.kv.Update(ctx, sid, data, e.Revision()); err != nil {
						if isWrongRevision(err) {
							continue // changed meanwhile: look again
						}
						return nil, fault.Wrap(err, "store session")
					}
					s.ended(ctx, &sess)
					return nil, fault.New(fault.Unauthorized, "refresh_reused", "this refresh token was already used; the session is revoked")
				}
			}
			return nil, errBadRefresh
		}
		u, err := s.users.User(ctx, sess.UserID)
		if err != nil {
			return nil, err
		}
		if u == nil || u.Disabled {
			return nil, errBadRefresh
		}
		newSecret, newHash := newSecret()
		sess.Used = append(sess.Used, sess.Refresh)
		if len(sess.Used) > 20 {
			sess.Used = sess.Used[len(sess.Used)-20:]
		}
		sess.Refresh = newHash
		data, _ := json.Marshal(sess)
		if _, err := s.kv.Update(ctx, sid, data, e.Revision()); err != nil {
			if isWrongRevision(err) {
				// Someone rotated concurrently: our token is now a used one; the next
				// round finds it in Used and revokes.
				continue
			}
			return nil, fault.Wrap(err, "store session")
		}
		return s.tokens(u, sess, newSecret)
	}
	return nil, errBadRefresh
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, sid string) error {
	sess, err := s.revoke(ctx, sid, "logout")
	if err == nil && sess != nil {
		s.ended(ctx, sess)
	}
	return err
}

func (s *Service) ended(ctx context.Context, sess *session) {
	if s.opt.SessionEnded != nil {
		s.opt.SessionEnded(ctx, sess.DeviceID, sess.UserID)
	}
}

// revoke ends a session and returns it (nil when it was already ended or is unknown).
func (s *Service) revoke(ctx context.Context, sid, why string) (*session, error) {
	for attempt := 0; attempt < 5; attempt++ {
		e, err := s.kv.Get(ctx, sid)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fault.Wrap(err, "read session")
		}
		var sess session
		_ = json.Unmarshal(e.Value(), &sess)
		if sess.Revoked != "" {
			return nil, nil
		}
		sess.Revoked = why
		data, _ := json.Marshal(sess)
		if _, err := s.kv.Update(ctx, sid, data, e.Revision()); err == nil {
			return &sess, nil
		}
	}
	return nil, fault.New(fault.Conflict, "busy", "the session is changing; try again")
}

var errBadToken = fault.New(fault.Unauthorized, "invalid_token", "missing, invalid or expired access token")

// Verify checks an access token and returns the caller. The algorithm is pinned to
// HS256; "none" and every other algorithm are refused, as are expired and
// not-yet-valid tokens and tokens of revoked sessions.
func (s *Service) Verify(ctx context.Context, token string) (org.Actor, string, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.opt.Key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithIssuer("gridkeeper"), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.opt.Now), jwt.WithLeeway(5*time.Second))
	if err != nil || c.Session == "" {
		return org.Actor{}, "", errBadToken
	}
	e, err := s.kv.Get(ctx, c.Session)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return org.Actor{}, "", errBadToken
	}
	if err != nil {
		return org.Actor{}, "", fault.Wrap(err, "read session")
	}
	var sess session
	if json.Unmarshal(e.Value(), &sess) != nil || sess.Revoked != "" || sess.DeviceID != c.DeviceID {
		return org.Actor{}, "", fault.New(fault.Unauthorized, "session_revoked", "the session has ended; log in again")
	}
	return org.Actor{UserID: c.Subject, Name: c.Name, Roles: c.Roles, UnitID: c.UnitID, DeviceID: c.DeviceID}, c.Session, nil
}

func (s *Service) tokens(u *org.User, sess session, secret string) (*Tokens, error) {
	now := s.opt.Now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "gridkeeper", Subject: u.ID, ID: uuid.NewString(),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.opt.AccessTTL)),
		},
		Name: u.Name, Roles: u.Roles, UnitID: u.UnitID, DeviceID: sess.DeviceID, Session: sess.ID,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.opt.Key)
	if err != nil {
		return nil, fault.Wrap(err, "sign token")
	}
	return &Tokens{
		AccessToken: tok, RefreshToken: sess.ID + "." + secret, ExpiresIn: int(s.opt.AccessTTL.Seconds()),
		User: UserInfo{ID: u.ID, Name: u.Name, Roles: u.Roles, UnitID: u.UnitID},
	}, nil
}

func newSecret() (secret, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
