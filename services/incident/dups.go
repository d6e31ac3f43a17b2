package incident

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

// Duplicate flagging: a new report of the same category within DupRadius metres and
// DupWindow of an open item is flagged as its likely duplicate for the dispatcher
// (who decides, with incident.merge). Geometry is computed here, in Go (DESIGN
// invariant 5), from an index of recent open reports the router keeps in memory.
const (
	DupRadius = 50.0 // metres
	DupWindow = 24 * time.Hour
)

// dupCell is about 110 m of latitude: a point's neighbours within DupRadius are in its
// cell or the 8 around it.
const dupCell = 0.001

type dupEntry struct {
	id       string
	category string
	at       Point
	when     time.Time
}

type cellKey struct {
	category string
	x, y     int64
}

// dupIndex holds recent open reports by category and cell.
type dupIndex struct {
	mu    sync.Mutex
	cells map[cellKey][]dupEntry
	where map[string]cellKey // incident id → its cell
}

func newDupIndex() *dupIndex {
	return &dupIndex{cells: map[cellKey][]dupEntry{}, where: map[string]cellKey{}}
}

func cellOf(category string, p Point) cellKey {
	// Longitude cells shrink towards the poles: widen them so 3×3 still covers the radius.
	lngCell := dupCell / math.Max(math.Cos(p.Lat*math.Pi/180), 0.1)
	return cellKey{category, int64(math.Floor(p.Lat / dupCell)), int64(math.Floor(p.Lng / lngCell))}
}

// add records an open report (again: idempotent).
func (x *dupIndex) add(id, category string, p Point, when time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.where[id]; ok {
		return
	}
	k := cellOf(category, p)
	x.cells[k] = append(x.cells[k], dupEntry{id: id, category: category, at: p, when: when})
	x.where[id] = k
}

// remove forgets an item that is no longer open.
func (x *dupIndex) remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k, ok := x.where[id]
	if !ok {
		return
	}
	delete(x.where, id)
	x.cells[k] = slices.DeleteFunc(x.cells[k], func(e dupEntry) bool { return e.id == id })
	if len(x.cells[k]) == 0 {
		delete(x.cells, k)
	}
}

// near returns the open items of category within DupRadius of p reported within
// DupWindow before when, nearest first; entries older than the window are dropped.
func (x *dupIndex) near(id, category string, p Point, when time.Time) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := cellOf(category, p)
	type hit struct {
		id string
		d  float64
	}
	var hits []hit
	for dx := int64(-1); dx <= 1; dx++ {
		for dy := int64(-1); dy <= 1; dy++ {
			k := cellKey{category, c.x + dx, c.y + dy}
			kept := x.cells[k][:0]
			for _, e := range x.cells[k] {
				if when.Sub(e.when) > DupWindow {
					delete(x.where, e.id)
					continue
				}
				kept = append(kept, e)
				if e.id == id || e.when.After(when) {
					continue
				}
				if d := geo.Distance(orb.Point{p.Lng, p.Lat}, orb.Point{e.at.Lng, e.at.Lat}); d <= DupRadius {
					hits = append(hits, hit{e.id, d})
				}
			}
			if len(kept) == 0 {
				delete(x.cells, k)
			} else {
				x.cells[k] = kept
			}
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.d < b.d {
			return -1
		}
		if a.d > b.d {
			return 1
		}
		return 0
	})
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		out = append(out, h.id)
	}
	return out
}
