package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// maxResponse bounds what the client reads of one answer.
const maxResponse = 64 << 20

// APIError is an answer with a status outside 2xx. Network failures are returned as
// they come from net/http, wrapped; both leave every queued mutation in place.
type APIError struct {
	Status int
	Body   Error
	// LastMutationID is set on a 409 mutation_gap.
	LastMutationID int64
}

func (e *APIError) Error() string {
	if e.Body.Code == "" {
		return fmt.Sprintf("client: HTTP %d", e.Status)
	}
	return fmt.Sprintf("client: HTTP %d %s: %s", e.Status, e.Body.Code, e.Body.Message)
}

// IsStatus reports whether err is an APIError with the given status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// post sends body as JSON to path with token (if any) and decodes a 2xx answer into
// out.
func (c *Client) post(ctx context.Context, path, token string, body, out any, rep *Report) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("client: encode %s: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opt.BaseURL+path, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("client: %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rep.BytesSent += int64(len(data))
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("client: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	// net/http asks for gzip and decodes it; these are the decoded bytes.
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	rep.BytesReceived += int64(len(answer))
	if err != nil {
		return fmt.Errorf("client: POST %s: read answer: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode}
		var e struct {
			Error
			LastMutationID int64 `json:"lastMutationId"`
		}
		if json.Unmarshal(answer, &e) == nil {
			ae.Body, ae.LastMutationID = e.Error, e.LastMutationID
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("client: POST %s: decode answer: %w", path, err)
		}
	}
	return nil
}

// call is post for the authenticated endpoints. A 401 means the access token expired
// or the session ended: refresh (or log in again) and retry once. Queued mutations are
// untouched by all of this; they stay on disk whatever happens here.
func (c *Client) call(ctx context.Context, path string, body, out any, rep *Report) error {
	if c.token() == "" {
		if err := c.login(ctx, rep); err != nil {
			return err
		}
	}
	err := c.post(ctx, path, c.token(), body, out, rep)
	if !IsStatus(err, http.StatusUnauthorized) {
		return err
	}
	if err := c.reauth(ctx, rep); err != nil {
		return err
	}
	return c.post(ctx, path, c.token(), body, out, rep)
}

func (c *Client) token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.AccessToken
}

// tokenPair is the answer of login and refresh.
type tokenPair struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	ExpiresIn    int    `json:"expiresIn"`
	User         User   `json:"user"`
	// LastMutationID (login only) is the highest id of this device the server has.
	LastMutationID *int64 `json:"lastMutationId"`
}

// reauth gets a new access token: by refresh when there is a refresh token, by login
// when there is none or the server refuses it (expired, revoked, or reused).
//
// Refresh tokens rotate, so the new pair is saved before it is used. If the answer to
// a refresh is lost, the next refresh presents the old token, the server takes it as
// reuse and ends the session, and the client logs in again: the queue never depends
// on the session surviving.
func (c *Client) reauth(ctx context.Context, rep *Report) error {
	c.mu.Lock()
	refresh := c.sess.RefreshToken
	c.mu.Unlock()
	if refresh != "" {
		var t tokenPair
		err := c.post(ctx, "/v1/auth/refresh", "", map[string]string{"refreshToken": refresh, "deviceId": c.opt.DeviceID}, &t, rep)
		if err == nil {
			return c.saveSession(t)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status >= 500 || ae.Status == http.StatusTooManyRequests {
			return err // offline or server trouble: try again next Sync
		}
		// Refused (401 invalid_refresh, refresh_reused, …): the session is over.
	}
	return c.login(ctx, rep)
}

// login starts a new session with the configured login and password.
func (c *Client) login(ctx context.Context, rep *Report) error {
	if c.opt.Login == "" || c.opt.Password == "" {
		return errors.New("client: no session and no login/password to start one")
	}
	var t tokenPair
	err := c.post(ctx, "/v1/auth/login", "", map[string]string{
		"login": c.opt.Login, "password": c.opt.Password, "deviceId": c.opt.DeviceID,
		"platform": c.opt.Platform, "appVersion": c.opt.AppVersion,
	}, &t, rep)
	if err != nil {
		return err
	}
	if err := c.saveSession(t); err != nil {
		return err
	}
	if t.LastMutationID != nil {
		return c.renumberAfter(*t.LastMutationID)
	}
	return nil
}

// renumberAfter moves the queue past last when the server already holds higher ids
// of this device than this install ever used: another install (or this app before a
// reinstall) used the deviceId, and our ids would be taken for re-sends of its
// mutations.
func (c *Client) renumberAfter(last int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if last <= c.box.LastMutationID {
		return nil
	}
	next := c.box
	next.Queue = slices.Clone(c.box.Queue)
	id := last
	for i := range next.Queue {
		id++
		next.Queue[i].ID = id
	}
	next.LastMutationID = id
	if err := c.store.save(outboxFile, &next); err != nil {
		return err
	}
	c.box = next
	return nil
}

func (c *Client) saveSession(t tokenPair) error {
	if t.AccessToken == "" || t.RefreshToken == "" {
		return errors.New("client: the server answered without tokens")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := session{Login: c.opt.Login, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, User: t.User}
	// Keep the pair in memory even if the write fails: it is the only valid one now.
	c.sess = s
	return c.store.save(authFile, &s)
}
