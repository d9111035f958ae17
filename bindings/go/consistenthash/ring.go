package consistenthash

import (
	"sort"
	"strconv"
)

// goRing is groupcache's ring in pure Go, for what libchash cannot do: a
// caller's Hash (C cannot call a Go function cheaply), replicas outside
// 1..65536, and node names libchash refuses (empty, or longer than 4096
// bytes). It places exactly as groupcache does, and as libchash's
// groupcache scheme does with weights: point i of a node of weight w, for i
// in 0..w*replicas-1, at hash(decimal(i) || name); a key at hash(key) goes
// to the first point at or after it, wrapping; equal points belong to the
// node added last.
type goRing struct {
	hash   Hash
	points []uint32
	owner  []int32 // node index of points[i]
}

func buildRing(hash Hash, replicas int, nodes []node) *goRing {
	r := &goRing{hash: hash}
	if replicas <= 0 {
		return r
	}
	total := 0
	for _, n := range nodes {
		total += n.weight * replicas
	}
	r.points = make([]uint32, 0, total)
	r.owner = make([]int32, 0, total)
	var buf []byte
	for j, n := range nodes {
		for i := 0; i < n.weight*replicas; i++ {
			buf = strconv.AppendInt(buf[:0], int64(i), 10)
			buf = append(buf, n.name...)
			r.points = append(r.points, hash(buf))
			r.owner = append(r.owner, int32(j))
		}
	}
	// Ascending hash; among equal hashes the node added last first, so the
	// search below, which lands on the first of equals, finds it.
	sort.Sort(byPoint{r})
	return r
}

type byPoint struct{ r *goRing }

func (b byPoint) Len() int { return len(b.r.points) }
func (b byPoint) Less(i, j int) bool {
	p := b.r.points
	if p[i] != p[j] {
		return p[i] < p[j]
	}
	return b.r.owner[i] > b.r.owner[j]
}
func (b byPoint) Swap(i, j int) {
	b.r.points[i], b.r.points[j] = b.r.points[j], b.r.points[i]
	b.r.owner[i], b.r.owner[j] = b.r.owner[j], b.r.owner[i]
}

// search is the index of the point that owns hash h.
func (r *goRing) search(h uint32) int {
	lo, hi := 0, len(r.points)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.points[mid] < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(r.points) {
		lo = 0
	}
	return lo
}

// get is the owner's node index, or -1 for an empty ring.
func (r *goRing) get(key string) int {
	if len(r.points) == 0 {
		return -1
	}
	return int(r.owner[r.search(r.hash([]byte(key)))])
}

// getN writes up to len(out) distinct node indexes, the owner first, then
// clockwise; returns how many.
func (r *goRing) getN(key string, out []int) int {
	if len(r.points) == 0 || len(out) == 0 {
		return 0
	}
	i := r.search(r.hash([]byte(key)))
	found := 0
	for steps := 0; steps < len(r.points) && found < len(out); steps++ {
		o := int(r.owner[i])
		dup := false
		for _, f := range out[:found] {
			if f == o {
				dup = true
				break
			}
		}
		if !dup {
			out[found] = o
			found++
		}
		if i++; i == len(r.points) {
			i = 0
		}
	}
	return found
}
