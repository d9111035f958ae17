package consistenthash

// Tests beyond groupcache's own (consistenthash_test.go, copied verbatim):
// the recorded groupcache vectors, libchash against the Go ring, the
// membership mirror, Remove, weights, GetN, every algorithm, concurrency.
// The comparison with groupcache itself runs in ../bench (it needs the
// groupcache source).

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// goCRC is crc32.ChecksumIEEE behind a func value: a non-nil Hash, so the
// Map runs on the Go ring with the placement libchash should give.
func goCRC(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

type vecCase struct {
	replicas int
	nodes    []string
	keys     [][2]string // key, owner
}

func loadVectors(t *testing.T) []vecCase {
	path := filepath.Join("..", "..", "..", "tests", "vectors", "groupcache.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no vectors: %v", err)
	}
	defer f.Close()
	unhex := func(s string) string {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("%s: bad hex %q", path, s)
		}
		return string(b)
	}
	var cases []vecCase
	var c *vecCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Split(line, " ")
		switch fs[0] {
		case "case":
			var r, n int
			fmt.Sscan(fs[1], &r)
			fmt.Sscan(fs[2], &n)
			c = &vecCase{replicas: r}
		case "node":
			c.nodes = append(c.nodes, unhex(fs[1]))
		case "key":
			c.keys = append(c.keys, [2]string{unhex(fs[1]), unhex(fs[2])})
		case "end":
			cases = append(cases, *c)
		}
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return cases
}

// The placements recorded from groupcache (tests/vectors), both backends.
func TestGroupcacheVectors(t *testing.T) {
	keys := 0
	for ci, c := range loadVectors(t) {
		for _, fn := range []Hash{nil, goCRC} {
			m := New(c.replicas, fn)
			// Split the adds in two calls: only the order matters.
			h := len(c.nodes) / 2
			m.Add(c.nodes[:h]...)
			m.Add(c.nodes[h:]...)
			if m.UsesLibchash() != (fn == nil) {
				t.Fatalf("case %d: UsesLibchash %v with fn %v", ci, m.UsesLibchash(), fn != nil)
			}
			for _, k := range c.keys {
				if got := m.Get(k[0]); got != k[1] {
					t.Fatalf("case %d (libchash %v): Get(%x) = %x, groupcache %x",
						ci, m.UsesLibchash(), k[0], got, k[1])
				}
				keys++
			}
		}
	}
	t.Logf("%d lookups match groupcache's", keys)
}

func randName(r *rand.Rand) string {
	b := make([]byte, 1+r.Intn(12))
	for i := range b {
		b[i] = byte('a' + r.Intn(26))
	}
	return string(b)
}

// checkSame: libchash and the Go ring agree on Get, GetN and the membership.
func checkSame(t *testing.T, what string, c, g *Map, r *rand.Rand) {
	t.Helper()
	if !c.UsesLibchash() || g.UsesLibchash() {
		t.Fatalf("%s: backends %v %v", what, c.UsesLibchash(), g.UsesLibchash())
	}
	if !reflect.DeepEqual(c.Nodes(), g.Nodes()) {
		t.Fatalf("%s: nodes %q vs %q", what, c.Nodes(), g.Nodes())
	}
	if names, _ := cNodes(c.load().c); strings.Join(names, "\x00") != strings.Join(c.Nodes(), "\x00") {
		t.Fatalf("%s: Go mirror %q, libchash %q", what, c.Nodes(), names)
	}
	if c.IsEmpty() != g.IsEmpty() {
		t.Fatalf("%s: IsEmpty %v vs %v", what, c.IsEmpty(), g.IsEmpty())
	}
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("key:%d", r.Intn(1<<30))
		if a, b := c.Get(k), g.Get(k); a != b {
			t.Fatalf("%s: Get(%q) libchash %q, Go ring %q", what, k, a, b)
		}
		n := r.Intn(5)
		a, err1 := c.GetN(k, n)
		b, err2 := g.GetN(k, n)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: GetN(%q, %d) libchash %q %v, Go ring %q %v", what, k, n, a, err1, b, err2)
		}
	}
}

// Random changes (Add with repeats, AddWeighted, SetWeight, Remove) on
// libchash's groupcache scheme and on the Go ring give the same placement.
func TestLibchashMatchesGoRing(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for round := 0; round < 20; round++ {
		replicas := 1 + r.Intn(60)
		c, g := New(replicas, nil), New(replicas, goCRC)
		pool := make([]string, 4+r.Intn(20))
		for i := range pool {
			pool[i] = randName(r)
		}
		for step := 0; step < 25; step++ {
			var what string
			switch op := r.Intn(4); op {
			case 0:
				batch := make([]string, r.Intn(5))
				for i := range batch {
					batch[i] = pool[r.Intn(len(pool))]
				}
				c.Add(batch...)
				g.Add(batch...)
				what = fmt.Sprintf("Add%q", batch)
			case 1:
				n, w := pool[r.Intn(len(pool))], 1+r.Intn(4)
				e1, e2 := c.AddWeighted(n, w), g.AddWeighted(n, w)
				if !errors.Is(e1, ErrExists) && e1 != nil || (e1 == nil) != (e2 == nil) {
					t.Fatalf("AddWeighted: %v vs %v", e1, e2)
				}
				what = fmt.Sprintf("AddWeighted(%q, %d)", n, w)
			case 2:
				n, w := pool[r.Intn(len(pool))], 1+r.Intn(4)
				e1, e2 := c.SetWeight(n, w), g.SetWeight(n, w)
				if (e1 == nil) != (e2 == nil) {
					t.Fatalf("SetWeight: %v vs %v", e1, e2)
				}
				what = fmt.Sprintf("SetWeight(%q, %d)", n, w)
			case 3:
				batch := []string{pool[r.Intn(len(pool))], pool[r.Intn(len(pool))], "absent"}
				if err := c.Remove(batch...); err != nil {
					t.Fatal(err)
				}
				if err := g.Remove(batch...); err != nil {
					t.Fatal(err)
				}
				what = fmt.Sprintf("Remove%q", batch)
			}
			checkSame(t, fmt.Sprintf("round %d step %d %s", round, step, what), c, g, r)
		}
	}
}

// A name libchash refuses moves a New Map to the Go ring, same placement.
func TestFallBackOnOddNames(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	m, g := New(20, nil), New(20, goCRC)
	m.Add("a", "b", "c")
	g.Add("a", "b", "c")
	if !m.UsesLibchash() {
		t.Fatal("expected libchash")
	}
	long := strings.Repeat("x", nameMax+1)
	m.Add("", long)
	g.Add("", long)
	if m.UsesLibchash() {
		t.Fatal("expected the Go ring after an empty name")
	}
	for i := 0; i < 1000; i++ {
		k := fmt.Sprint(r.Int())
		if m.Get(k) != g.Get(k) {
			t.Fatalf("Get(%q) %q vs %q", k, m.Get(k), g.Get(k))
		}
	}
	if err := NewMust(t).AddWeighted("", 1); !errors.Is(err, ErrName) {
		t.Fatalf("empty name on an Options Map: %v", err)
	}
}

func NewMust(t *testing.T) *Map {
	m, err := NewWithOptions(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// groupcache's odd corners: replicas 0 (never any point), the zero Map.
func TestOddReplicas(t *testing.T) {
	m := New(0, nil)
	m.Add("a", "b")
	if !m.IsEmpty() || m.Get("k") != "" || m.Len() != 2 || m.UsesLibchash() {
		t.Fatalf("replicas 0: IsEmpty %v Get %q Len %d", m.IsEmpty(), m.Get("k"), m.Len())
	}
	big := New(vnodesMax+1, nil)
	big.Add("a")
	if big.Get("k") != "a" || big.UsesLibchash() {
		t.Fatal("replicas above libchash's limit")
	}
	var z Map
	if !z.IsEmpty() || z.Get("k") != "" || z.Len() != 0 {
		t.Fatal("zero Map")
	}
	if n, err := z.GetN("k", 3); n != nil || err != nil {
		t.Fatal("zero Map GetN")
	}
}

// Removing a node moves only its keys.
func TestRemoveMovesOnlyItsKeys(t *testing.T) {
	m := New(160, nil)
	var nodes []string
	for i := 0; i < 20; i++ {
		nodes = append(nodes, fmt.Sprintf("node-%d", i))
	}
	m.Add(nodes...)
	before := map[string]string{}
	for i := 0; i < 20000; i++ {
		k := fmt.Sprintf("key:%d", i)
		before[k] = m.Get(k)
	}
	if err := m.Remove("node-7"); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for k, was := range before {
		now := m.Get(k)
		if was != "node-7" && now != was {
			t.Fatalf("%q moved from %q to %q", k, was, now)
		}
		if now == "node-7" {
			t.Fatalf("%q still on the removed node", k)
		}
		if was == "node-7" {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("node-7 owned nothing")
	}
	// Same as a Map built without it.
	f := New(160, nil)
	f.Add(append(nodes[:7:7], nodes[8:]...)...)
	for k := range before {
		if m.Get(k) != f.Get(k) {
			t.Fatalf("%q: after Remove %q, fresh %q", k, m.Get(k), f.Get(k))
		}
	}
}

func TestWeightsShareKeys(t *testing.T) {
	m := New(160, nil)
	m.Add("a", "b")
	if err := m.AddWeighted("heavy", 4); err != nil {
		t.Fatal(err)
	}
	if err := m.AddWeighted("a", 2); !errors.Is(err, ErrExists) {
		t.Fatalf("AddWeighted of a member: %v", err)
	}
	if err := m.SetWeight("nope", 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetWeight of a stranger: %v", err)
	}
	if err := m.SetWeight("a", 0); !errors.Is(err, ErrWeight) {
		t.Fatalf("weight 0: %v", err)
	}
	count := map[string]int{}
	for i := 0; i < 60000; i++ {
		count[m.Get(fmt.Sprintf("key:%d", i))]++
	}
	share := float64(count["heavy"]) / 60000
	if share < 0.55 || share > 0.78 { // 4/6 ideally
		t.Fatalf("weight 4 of 6 took %.3f of the keys (%v)", share, count)
	}
}

func TestGetN(t *testing.T) {
	m := New(50, nil)
	m.Add("a", "b", "c", "d")
	for i := 0; i < 1000; i++ {
		k := fmt.Sprint(i)
		l, err := m.GetN(k, 3)
		if err != nil || len(l) != 3 || l[0] != m.Get(k) || l[0] == l[1] || l[1] == l[2] || l[0] == l[2] {
			t.Fatalf("GetN(%q, 3) = %q, %v; Get %q", k, l, err, m.Get(k))
		}
		if all, _ := m.GetN(k, 10); len(all) != 4 {
			t.Fatalf("GetN(%q, 10) = %q", k, all)
		}
	}
	if _, err := m.GetN("k", -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("GetN -1: %v", err)
	}
	j, _ := NewWithOptions(Options{Algorithm: "jump"})
	j.Add("a", "b")
	if _, err := j.GetN("k", 2); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("jump GetN: %v", err)
	}
}

// Every algorithm and scheme libchash has, through NewWithOptions.
func TestEveryAlgorithm(t *testing.T) {
	algos := []string{"ring", "modulo", "jump", "rendezvous", "maglev", "multiprobe",
		"bounded", "memento", "buckets"}
	for _, a := range algos {
		for _, s := range []string{"", "native", "groupcache", "ketama", "twemproxy", "nginx"} {
			m, err := NewWithOptions(Options{Algorithm: a, Scheme: s})
			if err != nil {
				// libchash refuses some pairs (multiprobe with ketama, ...).
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s/%s: %v", a, s, err)
				}
				continue
			}
			nodes := []string{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211"}
			m.Add(nodes...)
			if err := m.AddWeighted("10.0.0.5:11211", 2); err != nil {
				t.Fatalf("%s/%s: AddWeighted: %v", a, s, err)
			}
			seen := map[string]bool{}
			r := rand.New(rand.NewSource(1))
			for i := 0; i < 2000; i++ {
				seen[m.Get(fmt.Sprintf("%x", r.Int63()))] = true
			}
			if len(seen) != 5 || seen[""] {
				t.Fatalf("%s/%s: keys went to %v", a, s, seen)
			}
			// jump removes only the last node.
			err = m.Remove("10.0.0.2:11211")
			if a == "jump" {
				if !errors.Is(err, ErrNotSupported) || m.Len() != 5 {
					t.Fatalf("jump Remove of a middle node: %v, %d nodes", err, m.Len())
				}
				err = m.Remove("10.0.0.5:11211")
			}
			if err != nil {
				t.Fatalf("%s/%s: Remove: %v", a, s, err)
			}
			names, _ := cNodes(m.load().c)
			if !reflect.DeepEqual(names, m.Nodes()) {
				t.Fatalf("%s/%s: mirror %q, libchash %q", a, s, m.Nodes(), names)
			}
		}
	}
	rc, err := NewWithOptions(Options{Algorithm: "buckets", Scheme: "redis-cluster"})
	if err != nil {
		t.Fatal(err)
	}
	rc.Add("r1", "r2", "r3")
	if rc.Get("{user1}.a") != rc.Get("{user1}.b") {
		t.Fatal("redis-cluster: a hash tag's keys split")
	}
	if _, err := NewWithOptions(Options{Algorithm: "nope"}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown algorithm: %v", err)
	}
	if _, err := NewWithOptions(Options{HashTag: "{}}"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("3-character hash tag: %v", err)
	}
	if _, err := NewWithOptions(Options{Replicas: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative replicas: %v", err)
	}
	if !strings.HasPrefix(ErrNotSupported.Error(), "chash: ") || Version() == "" {
		t.Fatal("error text or version")
	}
}

// Readers never lock and may run during changes; run with -race.
func TestConcurrentReadersAndWriter(t *testing.T) {
	m := New(40, nil)
	m.Add("n0", "n1", "n2")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("k%d-%d", g, i)
				if m.Get(k) == "" {
					t.Error("a key with no owner")
					return
				}
				if l, err := m.GetN(k, 2); err != nil || len(l) < 1 {
					t.Errorf("GetN: %q %v", l, err)
					return
				}
			}
		}(g)
	}
	for i := 3; i < 200; i++ {
		m.Add(fmt.Sprintf("n%d", i))
		if i%3 == 0 {
			if err := m.Remove(fmt.Sprintf("n%d", i-2)); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// One empty cgo call, for scale against Get.
func BenchmarkCgoCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cgoNop()
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	if asanBuild {
		t.Skip("go test -asan allocates on its own")
	}
	m := New(160, nil)
	m.Add("a", "b", "c")
	key := "some-key"
	if n := testing.AllocsPerRun(100, func() { m.Get(key) }); n != 0 {
		t.Fatalf("Get allocates %v times", n)
	}
}
