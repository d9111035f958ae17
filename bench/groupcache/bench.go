// Command bench measures github.com/golang/groupcache/consistenthash, the
// baseline libchash's groupcache scheme is compared against.
//
// For N in {10,100,1000} nodes named "node-%d" and replicas V in {50,160}:
//   - build_ms: median wall time of New(V, nil) + one Add(all N names);
//   - ns_per_lookup: median over passes of Get() over 1,000,000
//     pre-generated keys "key:%d";
//   - max_over_mean, stddev_over_mean: key counts per node over those keys
//     (population stddev).
//
// Prints a table, then one JSON object per line (lines starting with '{').
// Usage: bench [-keys 1000000] [-passes 5]   (see run.sh)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/golang/groupcache/consistenthash"
)

type result struct {
	Algo           string  `json:"algo"`
	Scheme         string  `json:"scheme"`
	Nodes          int     `json:"nodes"`
	Vnodes         int     `json:"vnodes"`
	NsPerLookup    float64 `json:"ns_per_lookup"`
	BuildMs        float64 `json:"build_ms"`
	MaxOverMean    float64 `json:"max_over_mean"`
	StddevOverMean float64 `json:"stddev_over_mean"`
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func build(v int, names []string) *consistenthash.Map {
	m := consistenthash.New(v, nil)
	m.Add(names...)
	return m
}

var sink string

func main() {
	nkeys := flag.Int("keys", 1000000, "lookup keys per pass")
	passes := flag.Int("passes", 5, "timed lookup passes (median)")
	flag.Parse()
	if *nkeys < 1 || *passes < 1 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: bench [-keys N] [-passes P]")
		os.Exit(2)
	}

	keys := make([]string, *nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
	}

	var results []result
	for _, n := range []int{10, 100, 1000} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("node-%d", i)
		}
		for _, v := range []int{50, 160} {
			// Build: at least 7 builds and at least ~200 ms of building.
			var bt []float64
			var total time.Duration
			for len(bt) < 7 || (total < 200*time.Millisecond && len(bt) < 201) {
				runtime.GC()
				t0 := time.Now()
				m := build(v, names)
				d := time.Since(t0)
				if m.IsEmpty() {
					panic("empty ring")
				}
				bt = append(bt, float64(d.Nanoseconds())/1e6)
				total += d
			}
			m := build(v, names)

			// Load balance (untimed pass).
			idx := make(map[string]int, n)
			for i, nm := range names {
				idx[nm] = i
			}
			counts := make([]float64, n)
			for _, k := range keys {
				counts[idx[m.Get(k)]]++
			}
			mean := float64(len(keys)) / float64(n)
			var mx, ss float64
			for _, c := range counts {
				mx = math.Max(mx, c)
				ss += (c - mean) * (c - mean)
			}
			sd := math.Sqrt(ss / float64(n))

			// Lookup timing.
			var lt []float64
			for p := 0; p < *passes; p++ {
				runtime.GC()
				t0 := time.Now()
				var s string
				for _, k := range keys {
					s = m.Get(k)
				}
				d := time.Since(t0)
				sink = s
				lt = append(lt, float64(d.Nanoseconds())/float64(len(keys)))
			}

			results = append(results, result{
				Algo: "groupcache-go", Scheme: "groupcache", Nodes: n, Vnodes: v,
				NsPerLookup:    math.Round(median(lt)*10) / 10,
				BuildMs:        math.Round(median(bt)*1000) / 1000,
				MaxOverMean:    math.Round(mx/mean*10000) / 10000,
				StddevOverMean: math.Round(sd/mean*10000) / 10000,
			})
		}
	}

	fmt.Printf("# groupcache consistenthash baseline: %s %s/%s, GOMAXPROCS=%d, %d keys \"key:%%d\", median of %d lookup passes\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), *nkeys, *passes)
	fmt.Printf("%6s %6s %10s %12s %10s %10s\n", "nodes", "vnodes", "build_ms", "ns/lookup", "max/mean", "sd/mean")
	for _, r := range results {
		fmt.Printf("%6d %6d %10.3f %12.1f %10.4f %10.4f\n",
			r.Nodes, r.Vnodes, r.BuildMs, r.NsPerLookup, r.MaxOverMean, r.StddevOverMean)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}
