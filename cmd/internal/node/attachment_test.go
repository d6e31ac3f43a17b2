package node_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

func photo(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	copy(b, []byte{0xff, 0xd8, 0xff}) // looks like a JPEG
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

func TestAttachments(t *testing.T) {
	h := nodetest.Start(t, func(c *node.Config, _ *node.Options) { c.AttachMax = 256 << 10 })
	h.Org(2)
	w1 := h.Login("worker1", "p1")
	jpeg := map[string]string{"Content-Type": "image/jpeg"}

	img, sha := photo(t, 100<<10)
	if st, body := w1.Raw("PUT", "/v1/attachments/"+sha, img, jpeg); st != 201 {
		t.Fatalf("put: %d %s", st, body)
	}
	if st, _ := w1.Raw("PUT", "/v1/attachments/"+sha, img, jpeg); st != 200 {
		t.Errorf("put again: %d, want 200 (idempotent)", st)
	}

	other, otherSHA := photo(t, 1000)
	for _, tc := range []struct {
		name, sha string
		body      []byte
		hdr       map[string]string
		status    int
		code      string
	}{
		{"hash mismatch", otherSHA, img, jpeg, 409, "hash_mismatch"},
		{"unsupported type", otherSHA, other, map[string]string{"Content-Type": "application/x-sh"}, 415, "unsupported_media_type"},
		{"upper-case name", "A" + otherSHA[1:], other, jpeg, 400, "invalid_sha256"},
		{"path traversal", "..%2F..%2Fetc%2Fpasswd", other, jpeg, 400, "invalid_sha256"},
		{"too large", otherSHA, make([]byte, 300<<10), jpeg, 413, ""},
	} {
		st, body := w1.Raw("PUT", "/v1/attachments/"+tc.sha, tc.body, tc.hdr)
		wantErr(t, tc.name, st, body, tc.status, tc.code)
	}
	if st, _ := w1.Raw("HEAD", "/v1/attachments/"+otherSHA, nil, nil); st != 404 {
		t.Errorf("after refused uploads HEAD says %d, want 404 (nothing kept)", st)
	}

	// Resumable: two chunks, a wrong offset in between.
	big, bigSHA := photo(t, 200<<10)
	patch := func(offset int, chunk []byte, first bool) (int, http.Header) {
		req, _ := http.NewRequest("PATCH", h.URL+"/v1/attachments/"+bigSHA, bytes.NewReader(chunk))
		req.Header.Set("Authorization", "Bearer "+w1.Token)
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Offset", strconv.Itoa(offset))
		if first {
			req.Header.Set("Upload-Length", strconv.Itoa(len(big)))
			req.Header.Set("Upload-Content-Type", "image/jpeg")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if st, hdr := patch(0, big[:80<<10], true); st != 204 || hdr.Get("Upload-Offset") != strconv.Itoa(80<<10) {
		t.Fatalf("first chunk: %d %v", st, hdr)
	}
	if st, hdr := patch(10, big[10:], false); st != 409 || hdr.Get("Upload-Offset") != strconv.Itoa(80<<10) {
		t.Errorf("wrong offset: %d %v", st, hdr)
	}
	req, _ := http.NewRequest("HEAD", h.URL+"/v1/attachments/"+bigSHA, nil)
	req.Header.Set("Authorization", "Bearer "+w1.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Upload-Offset") != strconv.Itoa(80<<10) || resp.Header.Get("Upload-Length") != strconv.Itoa(len(big)) {
		t.Fatalf("HEAD of a partial upload: %v %v", err, resp.Header)
	}
	if st, _ := patch(80<<10, big[80<<10:], false); st != 201 {
		t.Fatalf("last chunk: %d", st)
	}

	// Downloads follow the scope of the records that reference them.
	get := func(c *nodetest.Client, sha string) (int, []byte) {
		return c.Raw("GET", "/v1/attachments/"+sha, nil, nil)
	}
	if st, body := get(w1, bigSHA); st != 200 || !bytes.Equal(body, big) {
		t.Errorf("the uploader downloads its photo: %d, %d bytes", st, len(body))
	}
	disp, w2 := h.Login("dispatcher", "d"), h.Login("worker2", "p2")
	if st, _ := get(disp, sha); st != 404 {
		t.Errorf("an unreferenced photo is the uploader's only: dispatcher got %d", st)
	}
	rep := nodetest.Report(newID(t))
	rep["photos"] = []string{sha}
	if _, r := w1.Push(w1.Queue([]string{"incident.report"}, []any{rep})); r.Results[0].Status != "applied" {
		t.Fatalf("report with photo: %+v", r)
	}
	if st, body := get(disp, sha); st != 200 || !bytes.Equal(body, img) {
		t.Errorf("the community's dispatcher sees the incident's photo: %d", st)
	}
	if st, _ := get(w2, sha); st != 404 {
		t.Errorf("a worker of another grid: %d, want 404", st)
	}
	if st, _ := get(h.Login("dispatcherb", "db"), sha); st != 404 {
		t.Errorf("another community: %d, want 404", st)
	}
	st, _ := disp.Raw("GET", "/v1/attachments/"+sha, nil, map[string]string{"If-None-Match": `"` + sha + `"`})
	if st != 304 {
		t.Errorf("If-None-Match: %d, want 304", st)
	}
	// Attachments survive a restart.
	h.Restart(nil)
	if st, body := get(h.Login("dispatcher", "d2"), sha); st != 200 || !bytes.Equal(body, img) {
		t.Errorf("after a restart: %d", st)
	}
}
