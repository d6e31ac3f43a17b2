// Package seal encrypts personal data at rest (ID-card and phone numbers) with
// AES-256-GCM. A sealed value names the key it was sealed with, so keys rotate: the
// new key seals, the previous ones still open, and re-sealing moves old values to the
// new key. Each value is bound to where it is stored (record and field) as additional
// data, so a sealed value copied elsewhere does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// prefix starts every sealed value: "s1.<key id>.<base64url(nonce|ciphertext)>".
const prefix = "s1."

// Keyring seals with its current key and opens with any of its keys.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// KeyID names a key: the first 8 hex digits of its SHA-256.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// New returns a keyring sealing with current and opening with current and previous.
// Keys are 32 bytes.
func New(current []byte, previous ...[]byte) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, key := range append([][]byte{current}, previous...) {
		if len(key) != 32 {
			return nil, fmt.Errorf("seal: key %d is %d bytes, want 32", i, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := KeyID(key)
		k.aeads[id] = aead
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
}

// ParseKey reads a key written as 64 hex digits or as base64 of 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("seal: a key is 32 bytes, written as 64 hex digits or base64")
}

// NewKey returns a fresh random key, as hex.
func NewKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Has reports whether the keyring holds the key of id.
func (k *Keyring) Has(id string) bool { return k.aeads[id] != nil }

// Current is the id of the key that seals.
func (k *Keyring) Current() string { return k.current }

// Seal encrypts plain for where it is stored ("" stays "").
func (k *Keyring) Seal(plain, where string) string {
	if plain == "" {
		return ""
	}
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out := aead.Seal(nonce, nonce, []byte(plain), []byte(where))
	return prefix + k.current + "." + base64.RawURLEncoding.EncodeToString(out)
}

// Sealed reports whether v is a sealed value.
func Sealed(v string) bool { return strings.HasPrefix(v, prefix) }

// KeyOf returns the id of the key v was sealed with ("" if v is not sealed).
func KeyOf(v string) string {
	if !Sealed(v) {
		return ""
	}
	id, _, _ := strings.Cut(v[len(prefix):], ".")
	return id
}

// ErrUnknownKey is returned for a value sealed with a key the keyring lacks.
var ErrUnknownKey = errors.New("seal: sealed with a key this server does not have")

// Open decrypts a sealed value for where it is stored ("" stays "").
func (k *Keyring) Open(v, where string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !Sealed(v) {
		return "", errors.New("seal: not a sealed value")
	}
	id, body, ok := strings.Cut(v[len(prefix):], ".")
	aead := k.aeads[id]
	if !ok || aead == nil {
		return "", ErrUnknownKey
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errors.New("seal: malformed sealed value")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(where))
	if err != nil {
		return "", errors.New("seal: the value does not open (tampered, or stored elsewhere)")
	}
	return string(plain), nil
}
