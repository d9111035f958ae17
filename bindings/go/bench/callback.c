// bench_call_go: one C-to-Go callback (callback.go).
#include "_cgo_export.h"

uint32_t bench_call_go(void) { return benchGoHash(); }
