package bench

// What a Hash called back from C would cost: Go -> C -> Go and back, once.
// The binding does not do this (a lookup would need it for every hash);
// a Map with a Hash runs on the pure-Go ring instead.

// #include <stdint.h>
// uint32_t bench_call_go(void);
import "C"

//export benchGoHash
func benchGoHash() C.uint32_t { return 0 }

// CallGoFromC calls a C function that calls an empty Go function.
func CallGoFromC() { C.bench_call_go() }
