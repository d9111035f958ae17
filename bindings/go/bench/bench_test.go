package bench

// The libchash binding against github.com/golang/groupcache/consistenthash
// itself: same placement (TestMatchesGroupcache), and the cost of Get and
// Add side by side in one run (go test -bench .; ../go_test.sh bench prints
// the medians as a table).

import (
	"fmt"
	"hash/crc32"
	"math/rand"
	"sync"
	"testing"

	ours "github.com/chash/chash/bindings/go/consistenthash"
	gc "github.com/golang/groupcache/consistenthash"
)

func crcFn(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// Random rings, binary names, repeated and empty names, many Add calls:
// both backends of ours give groupcache's answer for every key.
func TestMatchesGroupcache(t *testing.T) {
	r := rand.New(rand.NewSource(rand.Int63()))
	bytes := func(max int) string {
		b := make([]byte, r.Intn(max+1))
		r.Read(b)
		return string(b)
	}
	lookups := 0
	for round := 0; round < 300; round++ {
		replicas := 1 + r.Intn(200)
		if round%50 == 0 {
			replicas = 0
		}
		g := gc.New(replicas, nil)
		c := ours.New(replicas, nil)
		f := ours.New(replicas, crcFn)
		var pool []string
		for i := 0; i < 1+r.Intn(40); i++ {
			pool = append(pool, "n"+bytes(12))
		}
		if round%10 == 0 {
			pool = append(pool, "") // groupcache takes it; libchash does not
		}
		for calls := 1 + r.Intn(4); calls > 0; calls-- {
			batch := make([]string, r.Intn(8))
			for i := range batch {
				batch[i] = pool[r.Intn(len(pool))] // repeats re-add
			}
			g.Add(batch...)
			c.Add(batch...)
			f.Add(batch...)
		}
		for i := 0; i < 200; i++ {
			k := bytes(30)
			want := g.Get(k)
			if got := c.Get(k); got != want {
				t.Fatalf("round %d: Get(%x) = %x, groupcache %x (libchash %v)",
					round, k, got, want, c.UsesLibchash())
			}
			if got := f.Get(k); got != want {
				t.Fatalf("round %d: Go ring Get(%x) = %x, groupcache %x", round, k, got, want)
			}
			lookups++
		}
		if g.IsEmpty() != c.IsEmpty() || g.IsEmpty() != f.IsEmpty() {
			t.Fatalf("round %d: IsEmpty differs", round)
		}
	}
	t.Logf("%d lookups equal groupcache's", lookups)
}

var sink string

const keyCount = 1 << 16

func keys() []string {
	k := make([]string, keyCount)
	for i := range k {
		k[i] = fmt.Sprintf("key:%d", i)
	}
	return k
}

type getter interface{ Get(string) string }

func nodeNames(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("node-%d", i)
	}
	return s
}

// BenchmarkGet: one lookup, nodes x replicas; impl chash is the binding on
// libchash (one cgo call a Get), gofn the binding with a Hash (pure Go),
// groupcache the original.
func BenchmarkGet(b *testing.B) {
	ks := keys()
	for _, n := range []int{10, 100, 1000} {
		for _, rep := range []int{50, 160} {
			nodes := nodeNames(n)
			c := ours.New(rep, nil)
			c.Add(nodes...)
			f := ours.New(rep, crcFn)
			f.Add(nodes...)
			g := gc.New(rep, nil)
			g.Add(nodes...)
			for _, impl := range []struct {
				name string
				m    getter
			}{{"chash", c}, {"groupcache", g}, {"gofn", f}} {
				b.Run(fmt.Sprintf("nodes=%d/replicas=%d/impl=%s", n, rep, impl.name), func(b *testing.B) {
					m := impl.m
					for i := 0; i < b.N; i++ {
						sink = m.Get(ks[i&(keyCount-1)])
					}
				})
			}
		}
	}
}

// BenchmarkCgoCall: an empty C function, the floor of any cgo call.
func BenchmarkCgoCall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Nop()
	}
}

// BenchmarkCgoCallback: Go calls C, which calls back an empty Go function:
// the price a Hash called from libchash would pay per hash.
func BenchmarkCgoCallback(b *testing.B) {
	for i := 0; i < b.N; i++ {
		CallGoFromC()
	}
}

// BenchmarkGetLocked: what a sync.RWMutex around Get would cost (the
// binding needs none: readers load an immutable snapshot atomically),
// one goroutine and all of GOMAXPROCS in parallel. 100 nodes x 160.
func BenchmarkGetLocked(b *testing.B) {
	ks := keys()
	c := ours.New(160, nil)
	c.Add(nodeNames(100)...)
	var mu sync.RWMutex
	locked := func(k string) string {
		mu.RLock()
		defer mu.RUnlock()
		return c.Get(k)
	}
	b.Run("lock=none/serial", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink = c.Get(ks[i&(keyCount-1)])
		}
	})
	b.Run("lock=rwmutex/serial", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink = locked(ks[i&(keyCount-1)])
		}
	})
	b.Run("lock=none/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_ = c.Get(ks[i&(keyCount-1)])
				i++
			}
		})
	})
	b.Run("lock=rwmutex/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_ = locked(ks[i&(keyCount-1)])
				i++
			}
		})
	})
}

// BenchmarkAdd: building a ring of n nodes in one Add call (-short: not
// 1000, whose groupcache build takes 80 ms).
func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		if n == 1000 && testing.Short() {
			continue
		}
		nodes := nodeNames(n)
		b.Run(fmt.Sprintf("nodes=%d/replicas=160/impl=chash", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ours.New(160, nil).Add(nodes...)
			}
		})
		b.Run(fmt.Sprintf("nodes=%d/replicas=160/impl=groupcache", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				gc.New(160, nil).Add(nodes...)
			}
		})
	}
}
