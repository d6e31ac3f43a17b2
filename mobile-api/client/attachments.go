package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// ChunkSize is how much of an attachment one request carries: a broken connection
// costs at most one chunk.
const ChunkSize = 256 << 10

// attachDir holds copies of queued attachments until they are uploaded.
const attachDir = "attachments"

// Attachment is a photo waiting to be uploaded.
type Attachment struct {
	SHA256      string `json:"sha256"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
}

// AddAttachment queues bytes for upload and returns their SHA-256, the name mutations
// use for them (e.g. in incident.report's photos). A copy is kept in the state
// directory, so the app may delete its own file at once. Sync uploads attachments
// before it pushes mutations, in chunks that resume where an interrupted one stopped.
func (c *Client) AddAttachment(data []byte, contentType string) (string, error) {
	if len(data) == 0 {
		return "", errors.New("client: an empty attachment")
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.ContainsFunc(c.box.Attachments, func(a Attachment) bool { return a.SHA256 == sha }) {
		return sha, nil
	}
	dir := filepath.Join(c.opt.StateDir, attachDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	if err := writeSynced(filepath.Join(dir, sha), data); err != nil {
		return "", err
	}
	next := c.box
	next.Attachments = append(slices.Clip(c.box.Attachments), Attachment{SHA256: sha, ContentType: contentType, Size: int64(len(data))})
	if err := c.store.save(outboxFile, &next); err != nil {
		return "", err
	}
	c.box = next
	return sha, nil
}

// Attachments lists what is waiting to be uploaded.
func (c *Client) Attachments() []Attachment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.box.Attachments)
}

// uploadAttachments sends every queued attachment, resuming each at the length the
// server reports, and drops it from the queue once the server holds it whole.
func (c *Client) uploadAttachments(ctx context.Context, rep *Report) error {
	for _, a := range c.Attachments() {
		if err := c.upload(ctx, a, rep); err != nil {
			return err
		}
		c.mu.Lock()
		next := c.box
		next.Attachments = slices.DeleteFunc(slices.Clone(c.box.Attachments), func(x Attachment) bool { return x.SHA256 == a.SHA256 })
		err := c.store.save(outboxFile, &next)
		if err == nil {
			c.box = next
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		_ = os.Remove(filepath.Join(c.opt.StateDir, attachDir, a.SHA256))
	}
	return nil
}

func (c *Client) upload(ctx context.Context, a Attachment, rep *Report) error {
	data, err := os.ReadFile(filepath.Join(c.opt.StateDir, attachDir, a.SHA256))
	if err != nil {
		return fmt.Errorf("client: attachment %s: %w", a.SHA256, err)
	}
	offset, err := c.storedLength(ctx, a.SHA256, rep)
	if err != nil {
		return err
	}
	for offset < int64(len(data)) {
		end := min(offset+ChunkSize, int64(len(data)))
		hdr := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": strconv.FormatInt(offset, 10)}
		if offset == 0 {
			hdr["Upload-Length"] = strconv.FormatInt(a.Size, 10)
			hdr["Upload-Content-Type"] = a.ContentType
		}
		resp, err := c.send(ctx, http.MethodPatch, "/v1/attachments/"+a.SHA256, data[offset:end], hdr, rep)
		if err != nil {
			return err
		}
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusOK:
			return nil
		case http.StatusNoContent:
			offset = end
		case http.StatusConflict:
			// offset_mismatch: the server says where to go on. hash_mismatch would mean
			// the copy on disk is corrupt: drop it rather than retry for ever.
			n, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
			if err != nil {
				return fmt.Errorf("client: attachment %s refused: %w", a.SHA256, &APIError{Status: resp.StatusCode})
			}
			offset = n
		default:
			return &APIError{Status: resp.StatusCode}
		}
	}
	return nil
}

// storedLength asks how much of an attachment the server holds (0 when nothing).
func (c *Client) storedLength(ctx context.Context, sha string, rep *Report) (int64, error) {
	resp, err := c.send(ctx, http.MethodHead, "/v1/attachments/"+sha, nil, nil, rep)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, &APIError{Status: resp.StatusCode}
	}
	return strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
}

// send makes an authenticated request with a raw body, refreshing the token once on
// 401. The answer's body is read and closed.
func (c *Client) send(ctx context.Context, method, path string, body []byte, hdr map[string]string, rep *Report) (*http.Response, error) {
	if c.token() == "" {
		if err := c.login(ctx, rep); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.opt.BaseURL+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", "Bearer "+c.token())
		rep.BytesSent += int64(len(body))
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		if err := c.reauth(ctx, rep); err != nil {
			return nil, err
		}
	}
}
