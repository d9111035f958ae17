package consistenthash

// The cgo side: every call into libchash lives in this file.
//
// Headers come from the source tree (bindings/go/consistenthash ->
// ../../../include) or, for a copy of the module outside the tree, from the
// compiler's default paths (an installed chash.h). The library is -lchash:
// an installed libchash, or in the tree the CMake build's libchash.a, found
// by CGO_LDFLAGS=-L<dir> (bindings/go/go_test.sh points it at a directory
// holding libchash.a alone, so the link is static). See ../README.md.

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: -lchash
#include <stdlib.h>
#include <string.h>
#include <chash.h>

// The owner's index, or a negative chash_error: one cgo call and no out
// pointer, so Get allocates nothing. The object comes as an integer: cgo
// checks (and so moves to the heap) a pointer argument to an incomplete
// type, which costs an allocation per call; it is C memory anyway.
static inline long long gochash_lookup(uintptr_t c, const char *key, size_t len) {
	size_t node;
	int rc = chash_lookup((const chash *)c, key, len, &node);
	return rc != CHASH_OK ? (long long)rc : (long long)node;
}

// The number found, or a negative chash_error.
static inline long long gochash_lookup_n(uintptr_t c, const char *key, size_t len,
                                         size_t want, size_t *nodes) {
	size_t found = 0;
	int rc = chash_lookup_n((const chash *)c, key, len, want, nodes, &found);
	return rc != CHASH_OK ? (long long)rc : (long long)found;
}

static inline size_t gochash_config_size(void) { return sizeof(chash_config); }

// A config from names ("" for the default); the first unknown name's error.
static int gochash_config(chash_config *cfg, const char *algo, const char *scheme,
                          const char *key_hash, const char *bucket_by, const char *tag,
                          unsigned vnodes, unsigned maglev, unsigned probes,
                          double epsilon, unsigned buckets) {
	memset(cfg, 0, sizeof *cfg);
	cfg->struct_size = sizeof *cfg;
	int rc;
	if (*algo && (rc = chash_algo_from_name(algo, &cfg->algo)) != CHASH_OK) return rc;
	if (*scheme && (rc = chash_scheme_from_name(scheme, &cfg->scheme)) != CHASH_OK) return rc;
	if (*key_hash && (rc = chash_hash_from_name(key_hash, &cfg->key_hash)) != CHASH_OK)
		return rc;
	if (*bucket_by && (rc = chash_bucket_by_from_name(bucket_by, &cfg->bucket_by)) != CHASH_OK)
		return rc;
	if (strlen(tag) >= sizeof cfg->hash_tag) return CHASH_EINVAL;
	strcpy(cfg->hash_tag, tag);
	cfg->vnodes = vnodes;
	cfg->maglev_table_size = maglev;
	cfg->probe_count = probes;
	cfg->load_epsilon = epsilon;
	cfg->bucket_count = buckets;
	return CHASH_OK;
}

// An empty function: what one cgo call costs (BenchmarkCgoCall).
static void gochash_nop(void) {}
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// cObject is one immutable libchash placement. Readers hold it while they
// call into C (runtime.KeepAlive), and the GC frees it once no reader can:
// the finalizer is what makes lock-free Get safe against a concurrent Add.
type cObject struct {
	c *C.chash
}

// ref is the object for the hot-path helpers (see gochash_lookup).
func (o *cObject) ref() C.uintptr_t { return C.uintptr_t(uintptr(unsafe.Pointer(o.c))) }

func newCObject(c *C.chash) *cObject {
	o := &cObject{c: c}
	runtime.SetFinalizer(o, func(o *cObject) { C.chash_free(o.c) })
	return o
}

// strData is the string's bytes for C, without a copy (C only reads them,
// and only during the call). Go 1.19 has no unsafe.StringData.
func strData(s string) *C.char {
	return *(**C.char)(unsafe.Pointer(&s))
}

// emptyName is where an empty name's bytes point: an empty Go string may
// have none, and libchash takes a NULL key but calls a NULL name EINVAL.
var emptyName byte

// nameData is strData for a node name: never NULL.
func nameData(s string) unsafe.Pointer {
	if len(s) == 0 {
		return unsafe.Pointer(&emptyName)
	}
	return unsafe.Pointer(strData(s))
}

// libchash's limits, from chash.h.
const (
	nameMax    = C.CHASH_NAME_MAX
	weightMax  = C.CHASH_WEIGHT_MAX
	vnodesMax  = C.CHASH_VNODES_MAX
	vnodesDflt = C.CHASH_VNODES_DEFAULT
)

// Version is the version of the libchash linked in, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.chash_version_string()) }

func cCreate(o *Options) (*cObject, error) {
	var cfg C.chash_config
	cs := func(s string) *C.char { return C.CString(s) }
	algo, scheme, kh, by, tag :=
		cs(o.Algorithm), cs(o.Scheme), cs(o.KeyHash), cs(o.BucketBy), cs(o.HashTag)
	defer func() {
		for _, p := range []*C.char{algo, scheme, kh, by, tag} {
			C.free(unsafe.Pointer(p))
		}
	}()
	for _, v := range []int{o.Replicas, o.MaglevTableSize, o.ProbeCount, o.BucketCount} {
		if v < 0 || v > 1<<31 {
			return nil, ErrInvalid
		}
	}
	rc := C.gochash_config(&cfg, algo, scheme, kh, by, tag, C.uint(o.Replicas),
		C.uint(o.MaglevTableSize), C.uint(o.ProbeCount), C.double(o.LoadEpsilon),
		C.uint(o.BucketCount))
	if rc != C.CHASH_OK {
		return nil, Errno(rc)
	}
	var c *C.chash
	if rc := C.chash_create(&cfg, &c); rc != C.CHASH_OK {
		return nil, Errno(rc)
	}
	return newCObject(c), nil
}

// cApply makes a new placement: a clone of old with the names in remove
// dropped, then add appended in order (one rebuild), then the weights in
// reweight set. All or nothing: on error old is untouched and nothing leaks.
func cApply(old *cObject, remove []string, add []node, reweight []node) (*cObject, error) {
	var c *C.chash
	rc := C.chash_clone(old.c, &c)
	runtime.KeepAlive(old)
	if rc != C.CHASH_OK {
		return nil, Errno(rc)
	}
	fail := func(rc C.int) (*cObject, error) {
		C.chash_free(c)
		return nil, Errno(rc)
	}
	for _, name := range remove {
		if rc := C.chash_remove(c, nameData(name), C.size_t(len(name))); rc != C.CHASH_OK {
			return fail(rc)
		}
	}
	if len(add) == 1 {
		n := add[0]
		if rc := C.chash_add(c, nameData(n.name), C.size_t(len(n.name)), C.uint32_t(n.weight)); rc != C.CHASH_OK {
			return fail(rc)
		}
	} else if len(add) > 1 {
		// chash_node_spec holds pointers, so it and the names it points to
		// must be C memory (cgo's rule: no Go pointers in memory C is given).
		total := 0
		for _, n := range add {
			total += len(n.name)
		}
		specs := (*C.chash_node_spec)(C.malloc(C.size_t(len(add)) * C.size_t(unsafe.Sizeof(C.chash_node_spec{}))))
		names := (*C.char)(C.malloc(C.size_t(total + 1)))
		sv := unsafe.Slice(specs, len(add))
		nv := unsafe.Slice((*byte)(unsafe.Pointer(names)), total+1)
		off := 0
		for i, n := range add {
			copy(nv[off:], n.name)
			sv[i] = C.chash_node_spec{
				name:     unsafe.Pointer(&nv[off]),
				name_len: C.size_t(len(n.name)),
				weight:   C.uint32_t(n.weight),
			}
			off += len(n.name)
		}
		rc := C.chash_add_many(c, specs, C.size_t(len(add)))
		C.free(unsafe.Pointer(specs))
		C.free(unsafe.Pointer(names))
		if rc != C.CHASH_OK {
			return fail(rc)
		}
	}
	for _, n := range reweight {
		if rc := C.chash_set_weight(c, nameData(n.name), C.size_t(len(n.name)), C.uint32_t(n.weight)); rc != C.CHASH_OK {
			return fail(rc)
		}
	}
	return newCObject(c), nil
}

// cGet is the owner's index, or -1 when there is none.
func cGet(o *cObject, key string) int {
	r := C.gochash_lookup(o.ref(), strData(key), C.size_t(len(key)))
	runtime.KeepAlive(o)
	if r < 0 {
		return -1
	}
	return int(r)
}

// cGetN fills idx (len = want) and returns how many it found.
func cGetN(o *cObject, key string, idx []C.size_t) (int, error) {
	r := C.gochash_lookup_n(o.ref(), strData(key), C.size_t(len(key)), C.size_t(len(idx)), &idx[0])
	runtime.KeepAlive(o)
	if r < 0 {
		return 0, Errno(r)
	}
	return int(r), nil
}

type cIndex = C.size_t

// cNodes reads the membership back from C, for tests.
func cNodes(o *cObject) ([]string, []int) {
	n := int(C.chash_node_count(o.c))
	names := make([]string, n)
	weights := make([]int, n)
	for i := 0; i < n; i++ {
		var p unsafe.Pointer
		var l C.size_t
		var w C.uint32_t
		C.chash_node(o.c, C.size_t(i), &p, &l, &w)
		names[i] = C.GoStringN((*C.char)(p), C.int(l))
		weights[i] = int(w)
	}
	runtime.KeepAlive(o)
	return names, weights
}

// cgoNop is one call of an empty C function.
func cgoNop() { C.gochash_nop() }

// Errno is a libchash error (chash_error): compare with errors.Is.
type Errno int

// libchash's errors (chash.h).
const (
	ErrInvalid      Errno = C.CHASH_EINVAL   // a bad argument or option
	ErrNoMemory     Errno = C.CHASH_ENOMEM   // out of memory
	ErrEmpty        Errno = C.CHASH_EEMPTY   // no nodes
	ErrExists       Errno = C.CHASH_EEXIST   // a node of that name is already a member
	ErrNotFound     Errno = C.CHASH_ENOENT   // no node of that name
	ErrName         Errno = C.CHASH_ENAME    // empty name, or longer than 4096 bytes
	ErrWeight       Errno = C.CHASH_EWEIGHT  // weight 0, or above 65535
	ErrTooBig       Errno = C.CHASH_ETOOBIG  // more nodes or points than the structure holds
	ErrNotSupported Errno = C.CHASH_ENOTSUP  // the algorithm cannot do this
	ErrUnknown      Errno = C.CHASH_EUNKNOWN // an algorithm, scheme or hash name unknown to libchash
)

func (e Errno) Error() string { return "chash: " + C.GoString(C.chash_strerror(C.int(e))) }
