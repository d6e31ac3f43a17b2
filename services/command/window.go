package command

// WindowSize is how far behind the highest applied mutation id of a handset an id may
// arrive and still be recognised as new. A push publishes its mutations in id order,
// but when one publish fails and a later one succeeds, the retry lands after it; the
// window lets the applier apply the late one exactly once. A push never carries more
// mutations than this.
const WindowSize = 512

// window records which of a handset's recent mutation ids a partition has applied:
// Max is the highest, bit i of Bits says whether Max-i was.
type window struct {
	Max int64 `bson:"m"`
	// Bits are unsigned words kept as int64: BSON has no unsigned 64-bit integers.
	Bits [WindowSize / 64]int64 `bson:"b"`
}

// seen reports whether id was applied (ids older than the window count as applied).
func (w window) seen(id int64) bool {
	if id > w.Max {
		return false
	}
	d := w.Max - id
	if d >= WindowSize {
		return true
	}
	return uint64(w.Bits[d/64])&(1<<(d%64)) != 0
}

// add marks id applied.
func (w *window) add(id int64) {
	if id > w.Max {
		w.shift(id - w.Max)
		w.Max = id
	}
	d := w.Max - id
	w.Bits[d/64] = int64(uint64(w.Bits[d/64]) | 1<<(d%64))
}

// shift moves the bits n places towards older ids.
func (w *window) shift(n int64) {
	if n >= WindowSize {
		w.Bits = [WindowSize / 64]int64{}
		return
	}
	words, bits := int(n/64), uint(n%64)
	var out [WindowSize / 64]int64
	for i := len(out) - 1; i >= words; i-- {
		v := uint64(w.Bits[i-words]) << bits
		if bits > 0 && i-words-1 >= 0 {
			v |= uint64(w.Bits[i-words-1]) >> (64 - bits)
		}
		out[i] = int64(v)
	}
	w.Bits = out
}

// merge combines two views of the same handset (a saved checkpoint and a journal's):
// an id either view saw applied stays applied.
func (w window) merge(o window) window {
	if o.Max > w.Max {
		w, o = o, w
	}
	o.shift(w.Max - o.Max)
	for i := range w.Bits {
		w.Bits[i] |= o.Bits[i]
	}
	return w
}
