package command

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestWindowAppliesEachIDOnce(t *testing.T) {
	var w window
	for _, id := range []int64{1, 2, 3, 7, 6, 5} { // 4 is late and 5, 6 out of order
		if w.seen(id) {
			t.Fatalf("%d seen before it was applied", id)
		}
		w.add(id)
	}
	for _, id := range []int64{1, 2, 3, 5, 6, 7} {
		if !w.seen(id) {
			t.Errorf("%d not recorded", id)
		}
	}
	if w.seen(4) || w.seen(8) {
		t.Error("4 and 8 were never applied")
	}
	w.add(4)
	w.add(700) // far ahead: everything older than the window counts as applied
	if !w.seen(4) || !w.seen(100) || w.seen(699) || !w.seen(700) {
		t.Errorf("after a long jump: %+v", w.Max)
	}
	// Shifts across word boundaries keep the bits.
	var x window
	x.add(10)
	x.add(10 + 64 + 3)
	if !x.seen(10) || x.seen(11) || !x.seen(77) {
		t.Error("bits lost across a word boundary")
	}
	// Merging two views keeps every id either saw.
	var a, b window
	a.add(5)
	b.add(4)
	b.add(5)
	if m := a.merge(b); !m.seen(4) || !m.seen(5) {
		t.Error("merge at the same max must union")
	}
	var c window
	c.add(9)
	if m := a.merge(c); m.Max != 9 || !m.seen(5) || !m.seen(9) || m.seen(7) {
		t.Error("merge of different maxima must union")
	}
	if m := c.merge(a); m.Max != 9 || !m.seen(5) {
		t.Error("merge is symmetric")
	}
}

// A window survives the database: every bit pattern fits BSON's signed integers.
func TestWindowStores(t *testing.T) {
	var w window
	for id := int64(1); id <= 600; id += 7 {
		w.add(id)
	}
	w.add(w.Max - 63) // the top bit of a word
	raw, err := bson.Marshal(clientMax{Client: "c", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	var back clientMax
	if err := bson.Unmarshal(raw, &back); err != nil || back.Window != w {
		t.Fatalf("round trip: %v", err)
	}
}
