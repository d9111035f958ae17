// Package bench compares the libchash binding with groupcache's
// consistenthash (bench_test.go); nop is the floor any cgo call pays.
package bench

// static void bench_nop(void) {}
import "C"

// Nop calls an empty C function.
func Nop() { C.bench_nop() }
