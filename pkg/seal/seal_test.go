package seal

import (
	"strings"
	"testing"
)

func key(b byte) []byte { return []byte(strings.Repeat(string(rune('a'+b)), 32)) }

// Sealed values open where they were sealed, not elsewhere, not when altered, and
// after a rotation with the previous key kept.
func TestSealOpenRotate(t *testing.T) {
	old, err := New(key(0))
	if err != nil {
		t.Fatal(err)
	}
	v := old.Seal("11010519491231002X", "hh-1/m-1/idCard")
	if !Sealed(v) || strings.Contains(v, "11010519491231002X") || KeyOf(v) != KeyID(key(0)) {
		t.Fatalf("sealed value: %s", v)
	}
	if v2 := old.Seal("11010519491231002X", "hh-1/m-1/idCard"); v2 == v {
		t.Errorf("two seals of the same value are equal: the nonce is not fresh")
	}
	if p, err := old.Open(v, "hh-1/m-1/idCard"); err != nil || p != "11010519491231002X" {
		t.Errorf("open: %q %v", p, err)
	}
	if _, err := old.Open(v, "hh-2/m-1/idCard"); err == nil {
		t.Errorf("a value copied to another record opens")
	}
	tampered := v[:len(v)-2] + "AA"
	if _, err := old.Open(tampered, "hh-1/m-1/idCard"); err == nil {
		t.Errorf("a tampered value opens")
	}
	rotated, err := New(key(1), key(0))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := rotated.Open(v, "hh-1/m-1/idCard"); err != nil || p != "11010519491231002X" {
		t.Errorf("the previous key does not open after rotation: %v", err)
	}
	if KeyOf(rotated.Seal("x", "w")) != KeyID(key(1)) {
		t.Errorf("rotation does not seal with the new key")
	}
	fresh, _ := New(key(2))
	if _, err := fresh.Open(v, "hh-1/m-1/idCard"); err != ErrUnknownKey {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := New([]byte("short")); err == nil {
		t.Errorf("a short key is accepted")
	}
	if k, err := ParseKey(NewKey()); err != nil || len(k) != 32 {
		t.Errorf("ParseKey(NewKey()): %v", err)
	}
}
