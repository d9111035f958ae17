// Command gen_vectors writes test vectors for the groupcache scheme of
// libchash by driving the real github.com/golang/groupcache/consistenthash
// package (consistenthash.New(replicas, nil), i.e. CRC-32 IEEE) and recording
// what Get returns. Nothing here re-implements the ring: every owner in the
// output is the package's own answer.
//
// Usage: gen_vectors -seed N -out PATH   (see gen_vectors.sh)
//
// Output format (tests/vectors/README.md); byte strings are lowercase hex:
//
//	# comment
//	case <replicas> <nodecount>
//	node <hex-name>                 nodecount lines, in Add order
//	key <hex-key> <hex-owner-name>  one line per lookup
//	end
package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/golang/groupcache/consistenthash"
)

type tcase struct {
	desc     string
	replicas int
	nodes    []string // in Add order; unique, non-empty
	chunks   []int    // sizes of successive Add calls; sum == len(nodes)
	keys     []string
}

// dupPoints counts ring points whose value is shared with an earlier point.
// Used only for the descriptive comment, never for the recorded owners.
func dupPoints(c *tcase) int {
	seen := make(map[uint32]bool)
	dups := 0
	for _, n := range c.nodes {
		for i := 0; i < c.replicas; i++ {
			h := crc32.ChecksumIEEE([]byte(strconv.Itoa(i) + n))
			if seen[h] {
				dups++
			}
			seen[h] = true
		}
	}
	return dups
}

func run(c *tcase, w *bufio.Writer, idx int) error {
	if len(c.nodes) == 0 || c.replicas < 1 {
		return fmt.Errorf("case %d: empty ring", idx)
	}
	uniq := make(map[string]bool)
	for _, n := range c.nodes {
		if n == "" || uniq[n] {
			return fmt.Errorf("case %d: empty or repeated node name %q", idx, n)
		}
		uniq[n] = true
	}
	m := consistenthash.New(c.replicas, nil)
	chunks := c.chunks
	if chunks == nil {
		chunks = []int{len(c.nodes)}
	}
	off := 0
	for _, sz := range chunks {
		m.Add(c.nodes[off : off+sz]...)
		off += sz
	}
	if off != len(c.nodes) {
		return fmt.Errorf("case %d: Add chunks cover %d of %d nodes", idx, off, len(c.nodes))
	}
	fmt.Fprintf(w, "# case %d: %s; add calls=%d; duplicate points=%d\n",
		idx, c.desc, len(chunks), dupPoints(c))
	fmt.Fprintf(w, "case %d %d\n", c.replicas, len(c.nodes))
	for _, n := range c.nodes {
		fmt.Fprintf(w, "node %s\n", hex.EncodeToString([]byte(n)))
	}
	seenKey := make(map[string]bool)
	for _, k := range c.keys {
		if seenKey[k] {
			continue // a repeated key adds nothing
		}
		seenKey[k] = true
		owner := m.Get(k)
		if !uniq[owner] {
			return fmt.Errorf("case %d: Get(%q) returned non-member %q", idx, k, owner)
		}
		fmt.Fprintf(w, "key %s %s\n", hex.EncodeToString([]byte(k)), hex.EncodeToString([]byte(owner)))
	}
	fmt.Fprintln(w, "end")
	return nil
}

func randBytes(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Intn(256))
	}
	return string(b)
}

// randName: arbitrary bytes (incl. 0x00 and >= 0x80), sometimes only digits
// or a digit-prefixed ASCII word so that decimal(i)||name strings collide.
func randName(r *rand.Rand) string {
	switch r.Intn(6) {
	case 0:
		n := 1 + r.Intn(4)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.Intn(10))
		}
		return string(b)
	case 1:
		words := []string{"a", "node", "x", "srv"}
		return strings.Repeat("1", r.Intn(4)) + words[r.Intn(len(words))]
	default:
		return randBytes(r, 1+r.Intn(20))
	}
}

// randChunks splits n nodes into one Add call, one call per node, or random runs.
func randChunks(r *rand.Rand, n int) []int {
	switch r.Intn(3) {
	case 0:
		return nil
	case 1:
		c := make([]int, n)
		for i := range c {
			c[i] = 1
		}
		return c
	default:
		var c []int
		for n > 0 {
			k := 1 + r.Intn(n)
			c = append(c, k)
			n -= k
		}
		return c
	}
}

// mixedKeys: the empty key, exact point strings decimal(i)||name (a key that
// lands exactly on a point), "key:%d" and random binary keys of length 0..40.
func mixedKeys(r *rand.Rand, c *tcase, n int) []string {
	keys := []string{""}
	for len(keys) < n {
		switch r.Intn(8) {
		case 0:
			name := c.nodes[r.Intn(len(c.nodes))]
			keys = append(keys, strconv.Itoa(r.Intn(c.replicas))+name)
		case 1:
			keys = append(keys, fmt.Sprintf("key:%d", r.Intn(1000000)))
		default:
			keys = append(keys, randBytes(r, r.Intn(41)))
		}
	}
	return keys
}

func articleKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
	}
	return keys
}

func buildCases(seed int64) []*tcase {
	r := rand.New(rand.NewSource(seed))
	var cs []*tcase

	// 1. Article-style rings: node-0..node-(N-1), keys key:0..key:199.
	for _, n := range []int{1, 2, 3, 10, 100} {
		for _, v := range []int{1, 3, 50, 160} {
			c := &tcase{desc: fmt.Sprintf("article N=%d replicas=%d", n, v), replicas: v}
			for i := 0; i < n; i++ {
				c.nodes = append(c.nodes, fmt.Sprintf("node-%d", i))
			}
			c.keys = articleKeys(200)
			cs = append(cs, c)
		}
	}

	// 2. Deliberate duplicate points: decimal(i)||a == decimal(j)||b.
	//    "node"/"1node": 11||node == 1||1node (replicas >= 12).
	//    "1"/"11":       11||1 == 1||11, and more at higher replicas.
	//    "a"/"1a"/"11a": 111||a == 11||1a == 1||11a (three-way, replicas >= 112).
	groups := [][]string{
		{"node", "1node"},
		{"1", "11"},
		{"2", "12"},
		{"a", "1a", "11a"},
		{"1", "11", "111", "21", "2"},
	}
	for _, g := range groups {
		perms := permutations(g)
		if len(perms) > 6 { // 5 names: 120 orders is too many; keep a few
			perms = [][]string{perms[0], perms[len(perms)-1], perms[37], perms[81]}
		}
		for _, v := range []int{11, 12, 50, 112, 160, 200} {
			for pi, p := range perms {
				if len(perms) > 2 && pi%2 == 1 && v != 200 && v != 112 {
					continue // keep the file small: all orders only at 112/200
				}
				c := &tcase{desc: fmt.Sprintf("collision %q replicas=%d", p, v), replicas: v, nodes: p}
				if pi%2 == 1 {
					c.chunks = ones(len(p)) // one Add call per node
				}
				// exact hits on every point string, then generic keys.
				for i := 0; i < v; i++ {
					for _, nm := range p {
						if i < 20 || r.Intn(8) == 0 {
							c.keys = append(c.keys, strconv.Itoa(i)+nm)
						}
					}
				}
				c.keys = append(c.keys, mixedKeys(r, c, 60)...)
				c.keys = append(c.keys, articleKeys(40)...)
				cs = append(cs, c)
			}
		}
	}
	// Collision groups mixed into a larger ring, in both orders.
	for _, order := range [][]string{{"node", "1node"}, {"1node", "node"}} {
		c := &tcase{desc: fmt.Sprintf("collision %q among node-0..node-29 replicas=160", order), replicas: 160}
		for i := 0; i < 30; i++ {
			c.nodes = append(c.nodes, fmt.Sprintf("node-%d", i))
			if i == 10 {
				c.nodes = append(c.nodes, order[0])
			}
			if i == 20 {
				c.nodes = append(c.nodes, order[1])
			}
		}
		c.chunks = randChunks(r, len(c.nodes))
		for i := 0; i < 160; i++ {
			c.keys = append(c.keys, strconv.Itoa(i)+"node", strconv.Itoa(i)+"1node")
		}
		c.keys = append(c.keys, mixedKeys(r, c, 100)...)
		cs = append(cs, c)
	}

	// 3. Random rings: binary names, replicas 1..200, 1..60 nodes, 200 keys.
	for k := 0; k < 100; k++ {
		c := &tcase{replicas: 1 + r.Intn(200)}
		n := 1 + r.Intn(60)
		seen := make(map[string]bool)
		for len(c.nodes) < n {
			nm := randName(r)
			if !seen[nm] {
				seen[nm] = true
				c.nodes = append(c.nodes, nm)
			}
		}
		c.desc = fmt.Sprintf("random replicas=%d N=%d", c.replicas, n)
		c.chunks = randChunks(r, n)
		c.keys = mixedKeys(r, c, 200)
		cs = append(cs, c)
	}
	return cs
}

func ones(n int) []int {
	c := make([]int, n)
	for i := range c {
		c[i] = 1
	}
	return c
}

// permutations of s, in a fixed (lexicographic by index) order.
func permutations(s []string) [][]string {
	if len(s) <= 1 {
		return [][]string{append([]string(nil), s...)}
	}
	var out [][]string
	for i := range s {
		rest := append(append([]string(nil), s[:i]...), s[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{s[i]}, p...))
		}
	}
	return out
}

func main() {
	seed := flag.Int64("seed", 1, "math/rand seed")
	out := flag.String("out", "", "output file (required)")
	pkgver := flag.String("pkgver", "", "groupcache package version for the header")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gen_vectors -seed N -out PATH [-pkgver V]")
		os.Exit(2)
	}
	if err := generate(*seed, *out, *pkgver); err != nil {
		fmt.Fprintln(os.Stderr, "gen_vectors:", err)
		os.Exit(1)
	}
}

func generate(seed int64, out, pkgver string) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".groupcache-vectors-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	w := bufio.NewWriter(tmp)
	cs := buildCases(seed)
	fmt.Fprintf(w, "# libchash groupcache-scheme test vectors; format: tests/vectors/README.md\n")
	fmt.Fprintf(w, "# generator: tools/groupcache/gen_vectors.go seed=%d (math/rand)\n", seed)
	fmt.Fprintf(w, "# reference: github.com/golang/groupcache/consistenthash New(replicas, nil) (CRC-32 IEEE)")
	if pkgver != "" {
		fmt.Fprintf(w, " debian %s", pkgver)
	}
	fmt.Fprintf(w, "\n# go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "# cases: %d\n", len(cs))
	for i, c := range cs {
		if err := run(c, w, i); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
