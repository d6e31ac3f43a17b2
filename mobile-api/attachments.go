package mobileapi

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gridkeeper/gridkeeper/pkg/fault"
)

func mediaType(c *fiber.Ctx, header string) string {
	t, _, _ := strings.Cut(c.Get(header), ";")
	return strings.ToLower(strings.TrimSpace(t))
}

func (s *server) putAttachment(c *fiber.Ctx) error {
	sha := strings.Clone(c.Params("sha256"))
	m, created, err := s.Attachments.Put(actorOf(c), sha, mediaType(c, fiber.HeaderContentType), c.Body())
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(m)
}

func (s *server) headAttachment(c *fiber.Ctx) error {
	m, ok := s.Attachments.Head(strings.Clone(c.Params("sha256")))
	if !ok {
		return c.SendStatus(fiber.StatusNotFound)
	}
	c.Set("Upload-Offset", strconv.FormatInt(m.Stored, 10))
	c.Set("Upload-Length", strconv.FormatInt(m.Size, 10))
	c.Set(fiber.HeaderContentType, m.ContentType)
	return c.SendStatus(fiber.StatusOK)
}

// patchAttachment appends a chunk at Upload-Offset. The first chunk of an upload also
// says Upload-Length and Upload-Content-Type.
func (s *server) patchAttachment(c *fiber.Ctx) error {
	offset, err := strconv.ParseInt(c.Get("Upload-Offset"), 10, 64)
	if err != nil || offset < 0 {
		return fault.New(fault.Invalid, "invalid_offset", "Upload-Offset must be the stored length HEAD reported")
	}
	var length int64
	if h := c.Get("Upload-Length"); h != "" {
		if length, err = strconv.ParseInt(h, 10, 64); err != nil || length <= 0 {
			return fault.New(fault.Invalid, "invalid_length", "Upload-Length must be a positive byte count")
		}
	}
	m, complete, err := s.Attachments.Append(actorOf(c), strings.Clone(c.Params("sha256")), offset, length,
		mediaType(c, "Upload-Content-Type"), c.Body())
	if err != nil {
		if fe := fault.As(err); fe.Code == "offset_mismatch" {
			c.Set("Upload-Offset", strconv.FormatInt(fe.Extra["uploadOffset"].(int64), 10))
		}
		return err
	}
	if complete {
		return c.Status(fiber.StatusCreated).JSON(m)
	}
	c.Set("Upload-Offset", strconv.FormatInt(m.Stored, 10))
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) getAttachment(c *fiber.Ctx) error {
	sha := strings.Clone(c.Params("sha256"))
	f, m, err := s.Attachments.Open(c.UserContext(), actorOf(c), sha)
	if err != nil {
		return err
	}
	etag := `"` + sha + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "private, max-age=31536000, immutable")
	if c.Get(fiber.HeaderIfNoneMatch) == etag {
		f.Close()
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, m.ContentType)
	// fasthttp closes the file once it is sent.
	return c.SendStream(f, int(m.Size))
}
