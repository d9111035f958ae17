// Package consistenthash is a drop-in for
// github.com/golang/groupcache/consistenthash backed by libchash (cgo).
//
// Switching is one line, the import path:
//
//	import "github.com/chash/chash/bindings/go/consistenthash"
//
// New(replicas, nil) places every key exactly where groupcache does (CRC-32
// IEEE, point i of a node at crc32(decimal(i) || name), equal points owned
// by the node added last): libchash's groupcache scheme, checked against
// groupcache itself and its own tests. A non-nil Hash is honoured by a
// pure-Go ring with the same rules (C cannot call a Go function cheaply, so
// that Map makes no cgo calls and costs about what groupcache does).
//
// Beyond groupcache: Remove, weights (AddWeighted, SetWeight), replica lists
// (GetN), and through NewWithOptions libchash's other schemes (native,
// ketama, twemproxy, nginx, redis-cluster) and algorithms (ring, modulo,
// jump, rendezvous, maglev, multiprobe, bounded, memento, buckets).
//
// Concurrency: any number of goroutines may call Get, GetN, IsEmpty, Len
// and Nodes at once, and concurrently with Add, AddWeighted, SetWeight and
// Remove, without a lock: a change builds a new placement (libchash's
// chash_clone, O(nodes + points)) and publishes it with an atomic pointer
// swap; readers see the old one or the new one, never a mix. Changes are
// serialised by a mutex. The placements a change replaces are freed by the
// garbage collector (a finalizer calls chash_free) once no reader holds
// them, so batch changes (Add takes many names) rather than adding nodes one
// call at a time in a loop over a large ring.
package consistenthash

import (
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
)

// Hash maps bytes to uint32, as groupcache's.
type Hash func(data []byte) uint32

// Options configure NewWithOptions. The zero value is libchash's default:
// the ring algorithm, the native scheme, 160 points per unit of weight.
// Names are libchash's (chash.h): they are passed to chash_*_from_name.
type Options struct {
	// Algorithm: "ring" (default), "modulo", "jump", "rendezvous",
	// "maglev", "multiprobe", "bounded", "memento", "buckets".
	Algorithm string
	// Scheme: "native" (default), "groupcache", "ketama", "twemproxy",
	// "nginx", "redis-cluster".
	Scheme string
	// Replicas: ring points per unit of weight (libchash's vnodes),
	// 0 = 160, at most 65536.
	Replicas int
	// KeyHash: "" for the scheme's own, else a twemproxy hash name
	// ("crc32a", "md5", "fnv1a_64", "murmur", ...).
	KeyHash string
	// HashTag: "" for none, or two characters such as "{}".
	HashTag string
	// Algorithm options, 0 for libchash's defaults: maglev's table size (a
	// prime), multiprobe's probes, bounded's epsilon, buckets' count and
	// how a key finds its bucket ("hash" or "digits").
	MaglevTableSize int
	ProbeCount      int
	LoadEpsilon     float64
	BucketCount     int
	BucketBy        string
}

type node struct {
	name   string
	weight int
}

// snapshot is one immutable placement and its membership, in libchash's
// node order (insertion order, removals closing the gaps).
type snapshot struct {
	c     *cObject // libchash, or nil for the Go ring
	ring  *goRing
	nodes []node
	names []string // nodes[i].name, for Get
	index map[string]int
}

func (s *snapshot) empty() bool {
	if s.c != nil {
		return len(s.nodes) == 0
	}
	return len(s.ring.points) == 0
}

// Map is a placement of keys on nodes. Use New or NewWithOptions.
type Map struct {
	cur atomic.Pointer[snapshot]

	mu       sync.Mutex // serialises changes
	fn       Hash       // the Go ring's hash, when s.c == nil
	replicas int        // the Go ring's
	// groupcache: a name added again becomes the newest node, which wins
	// equal points (groupcache rewrites its points' owner on every Add).
	newestWins bool
	// New(replicas, nil): on a name libchash refuses, move to the Go ring
	// (same placement) instead of failing.
	canFallBack bool
}

// New is groupcache's New: a ring of `replicas` points per node, keys
// and points hashed by fn, crc32.ChecksumIEEE when fn is nil. With a nil fn
// and replicas in 1..65536 it runs on libchash's groupcache scheme; else
// (and if a node name is empty or longer than 4096 bytes) on the Go ring,
// with the same placement.
func New(replicas int, fn Hash) *Map {
	m := &Map{fn: fn, replicas: replicas, newestWins: true}
	if fn == nil && replicas >= 1 && replicas <= vnodesMax {
		o, err := cCreate(&Options{Scheme: "groupcache", Replicas: replicas})
		if err != nil {
			panic("consistenthash: libchash refused the groupcache scheme: " + err.Error())
		}
		m.canFallBack = true
		m.fn = crc32.ChecksumIEEE
		m.cur.Store(newSnapshot(o, nil, nil))
		return m
	}
	if m.fn == nil {
		m.fn = crc32.ChecksumIEEE
	}
	m.cur.Store(newSnapshot(nil, buildRing(m.fn, replicas, nil), nil))
	return m
}

// NewWithOptions is a Map on any of libchash's algorithms and schemes.
// Errors: the option libchash refused (errors.Is with ErrInvalid,
// ErrUnknown, ...).
func NewWithOptions(opts Options) (*Map, error) {
	o, err := cCreate(&opts)
	if err != nil {
		return nil, fmt.Errorf("consistenthash: %+v: %w", opts, err)
	}
	m := &Map{newestWins: opts.Scheme == "groupcache"}
	m.cur.Store(newSnapshot(o, nil, nil))
	return m, nil
}

func newSnapshot(c *cObject, r *goRing, nodes []node) *snapshot {
	s := &snapshot{c: c, ring: r, nodes: nodes,
		names: make([]string, len(nodes)), index: make(map[string]int, len(nodes))}
	for i, n := range nodes {
		s.names[i] = n.name
		s.index[n.name] = i
	}
	return s
}

// emptySnapshot stands in for the zero Map's: nothing to read.
var emptySnapshot = &snapshot{ring: &goRing{}}

// load is the current placement (the zero Map reads as empty).
func (m *Map) load() *snapshot {
	if s := m.cur.Load(); s != nil {
		return s
	}
	return emptySnapshot
}

// UsesLibchash tells whether lookups go to libchash (true) or to the pure-Go
// ring (a caller's Hash, odd replicas or names; see New).
func (m *Map) UsesLibchash() bool { return m.load().c != nil }

// IsEmpty returns true if there are no items available.
func (m *Map) IsEmpty() bool { return m.load().empty() }

// Len is the number of nodes.
func (m *Map) Len() int { return len(m.load().nodes) }

// Nodes are the node names in libchash's order: as added, removals closing
// the gaps (with the groupcache scheme a name added again moves last).
func (m *Map) Nodes() []string { return append([]string(nil), m.load().names...) }

// Get gets the closest item in the hash to the provided key: the node that
// owns it, "" when there are none. One cgo call, no allocation.
func (m *Map) Get(key string) string {
	s := m.load()
	var i int
	if s.c != nil {
		i = cGet(s.c, key)
	} else {
		i = s.ring.get(key)
	}
	if i < 0 {
		return ""
	}
	return s.names[i]
}

// GetN is a replica list: up to n distinct nodes, the owner (Get's answer)
// first, then the next distinct nodes clockwise (rendezvous: by falling
// score; buckets: the bucket's rendezvous order). Fewer than n only when the
// Map has fewer nodes with points. Errors: ErrNotSupported for the
// algorithms with no natural order (modulo, jump, maglev, memento),
// ErrInvalid for n < 0. An empty Map gives no nodes and no error.
func (m *Map) GetN(key string, n int) ([]string, error) {
	if n < 0 {
		return nil, ErrInvalid
	}
	s := m.load()
	if n > len(s.nodes) {
		n = len(s.nodes)
	}
	if n == 0 || s.empty() {
		return nil, nil
	}
	out := make([]string, 0, n)
	if s.c != nil {
		idx := make([]cIndex, n)
		found, err := cGetN(s.c, key, idx)
		if err != nil {
			return nil, fmt.Errorf("consistenthash: GetN: %w", err)
		}
		for _, i := range idx[:found] {
			out = append(out, s.names[i])
		}
		return out, nil
	}
	idx := make([]int, n)
	found := s.ring.getN(key, idx)
	for _, i := range idx[:found] {
		out = append(out, s.names[i])
	}
	return out, nil
}

// Add adds some keys (nodes) to the hash, each of weight 1, in one change.
// A name already present keeps its weight; with the groupcache scheme it
// becomes the newest node, as in groupcache (it wins equal points), else it
// is left as it is. Add panics if libchash refuses a name (empty or over
// 4096 bytes, outside New's Maps) or the size (ErrTooBig, or what the
// algorithm cannot hold); AddWeighted returns those errors instead.
func (m *Map) Add(keys ...string) {
	if err := m.add(keys, 1, false); err != nil {
		panic(err)
	}
}

// AddWeighted adds one node of weight 1..65535: it gets weight times the
// points (the ring schemes), buckets or share of a node of weight 1.
// Errors: ErrExists (use SetWeight), ErrWeight, ErrName, ErrTooBig, ...
func (m *Map) AddWeighted(name string, weight int) error {
	return m.add([]string{name}, weight, true)
}

func (m *Map) add(keys []string, weight int, strict bool) error {
	if weight < 1 || weight > weightMax {
		return fmt.Errorf("consistenthash: add weight %d: %w", weight, ErrWeight)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.writable()
	// The batch in final order: with newestWins a repeated name counts at
	// its last place (groupcache's last write wins), else at its first.
	seen := make(map[string]bool, len(keys))
	var batch []string
	if m.newestWins {
		for i := len(keys) - 1; i >= 0; i-- {
			if !seen[keys[i]] {
				seen[keys[i]] = true
				batch = append(batch, keys[i])
			}
		}
		for i, j := 0, len(batch)-1; i < j; i, j = i+1, j-1 {
			batch[i], batch[j] = batch[j], batch[i]
		}
	} else {
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				batch = append(batch, k)
			}
		}
	}
	var remove []string
	var add []node
	for _, k := range batch {
		i, ok := s.index[k]
		switch {
		case ok && strict:
			return fmt.Errorf("consistenthash: add %q: %w", k, ErrExists)
		case ok && m.newestWins:
			remove = append(remove, k)
			add = append(add, node{k, s.nodes[i].weight})
		case ok:
		default:
			add = append(add, node{k, weight})
		}
	}
	if len(add) == 0 {
		return nil
	}
	return m.apply(s, remove, add, nil)
}

// Remove drops nodes, in one change; names that are not members are
// ignored. Their keys move to the nodes that follow them; no other key
// moves (except with modulo, maglev's few, and memento's history). Errors
// (nothing is removed): ErrNotSupported for jump unless the last nodes go.
func (m *Map) Remove(keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.writable()
	seen := make(map[string]bool, len(keys))
	var remove []string
	for _, k := range keys {
		if _, ok := s.index[k]; ok && !seen[k] {
			seen[k] = true
			remove = append(remove, k)
		}
	}
	if len(remove) == 0 {
		return nil
	}
	return m.apply(s, remove, nil, nil)
}

// SetWeight changes a node's weight (1..65535); its points are recomputed,
// every other node keeps its own. Errors: ErrNotFound, ErrWeight,
// ErrNotSupported (jump: any node but the last).
func (m *Map) SetWeight(name string, weight int) error {
	if weight < 1 || weight > weightMax {
		return fmt.Errorf("consistenthash: weight %d: %w", weight, ErrWeight)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.writable()
	if _, ok := s.index[name]; !ok {
		return fmt.Errorf("consistenthash: set weight %q: %w", name, ErrNotFound)
	}
	return m.apply(s, nil, nil, []node{{name, weight}})
}

// writable is the placement to change; the zero Map cannot change (it has
// no hash and no replicas): use New.
func (m *Map) writable() *snapshot {
	s := m.cur.Load()
	if s == nil {
		panic("consistenthash: a Map must be made by New or NewWithOptions")
	}
	return s
}

// apply publishes s with remove dropped, add appended, reweight set; called
// with m.mu held. All or nothing.
func (m *Map) apply(s *snapshot, remove []string, add []node, reweight []node) error {
	drop := make(map[string]bool, len(remove))
	for _, k := range remove {
		drop[k] = true
	}
	nodes := make([]node, 0, len(s.nodes)-len(remove)+len(add))
	for _, n := range s.nodes {
		if !drop[n.name] {
			nodes = append(nodes, n)
		}
	}
	nodes = append(nodes, add...)
	for _, rw := range reweight {
		for i := range nodes {
			if nodes[i].name == rw.name {
				nodes[i].weight = rw.weight
			}
		}
	}
	c := s.c
	if c != nil && m.canFallBack {
		for _, n := range add {
			if len(n.name) == 0 || len(n.name) > nameMax {
				c = nil // groupcache takes any name; the Go ring does too
				break
			}
		}
	}
	if c == nil {
		m.cur.Store(newSnapshot(nil, buildRing(m.fn, m.replicas, nodes), nodes))
		return nil
	}
	next, err := cApply(c, remove, add, reweight)
	if err != nil {
		return fmt.Errorf("consistenthash: %w", err)
	}
	m.cur.Store(newSnapshot(next, nil, nodes))
	return nil
}
