"""chash - Python bindings for libchash (consistent hashing), over ctypes.

Pure Python and the standard library only: no compiled extension. The module
loads the shared library named by the environment variable CHASH_LIBRARY
(a path, e.g. build/libchash.so) if it is set, else the installed one
(``ctypes.util.find_library("chash")``, then ``libchash.so.1``).

    import chash
    with chash.Ring() as ring:              # ring, native scheme, 160 vnodes
        ring.add("cache-a")
        ring.add("cache-b", weight=2)
        ring.lookup("user:42")              # -> "cache-b"
        ring.lookup_n("user:42", 2)         # -> ["cache-b", "cache-a"]

Placement is the C library's own: every lookup is one call into libchash, so
a key lands on exactly the node a C program (or the ``chash`` CLI, or the
peers the presets copy) would pick.

Errors. Every error the C API returns becomes a :class:`ChashError` whose
``code`` is the negative ``chash_error``, ``name`` its name in chash.h
(``"CHASH_ENOTSUP"``) and ``strerror`` the library's message
(``chash_strerror``). Python-side misuse (a wrong type, a negative count, a
closed ring) raises TypeError or ValueError before C is called.

Threads. A Ring may be shared by any number of threads: lookups take no
lock, and a change (add, remove, ...) is made on a clone of the C object
that is then published, as chash.h's "Publishing changes" describes; the
old object is freed when the last lookup using it returns. Changes are
serialized by a lock and release the GIL while in C; lookups keep it (they
are shorter than a GIL hand-over).

Memory. A Ring owns one C object, freed by :meth:`Ring.close`, by leaving a
``with`` block, or when the Ring is garbage collected (``__del__``). Lookups
allocate nothing in C; on the Python side one small ctypes out-parameter
per call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__all__ = [
    "ChashError",
    "Ring",
    "ownership",
    "plan",
    "simulate",
    "sample_key",
    "library_version",
    "library_path",
    "ALGORITHMS",
    "SCHEMES",
    "KEY_HASHES",
]

Key = Union[str, bytes, bytearray, memoryview]
Name = Union[str, bytes]
# A membership: a node count N (node-0 .. node-(N-1), as the CLI's --nodes),
# or names, or (name, weight) pairs.
Nodes = Union[int, Iterable[Union[Name, Tuple[Name, int]]]]

# ---- errors -----------------------------------------------------------------

# chash.h's chash_error, value -> name. The library has chash_strerror() for
# the message but no function for the name, so the names live here.
ERROR_NAMES: Dict[int, str] = {
    0: "CHASH_OK",
    -1: "CHASH_EINVAL",
    -2: "CHASH_ENOMEM",
    -3: "CHASH_EEMPTY",
    -4: "CHASH_EEXIST",
    -5: "CHASH_ENOENT",
    -6: "CHASH_ENAME",
    -7: "CHASH_EWEIGHT",
    -8: "CHASH_ETOOBIG",
    -9: "CHASH_ENOTSUP",
    -10: "CHASH_EUNKNOWN",
    -11: "CHASH_ESIZE",
}

CHASH_OK = 0
CHASH_EINVAL = -1
CHASH_ENOMEM = -2
CHASH_EEMPTY = -3
CHASH_EEXIST = -4
CHASH_ENOENT = -5
CHASH_ENAME = -6
CHASH_EWEIGHT = -7
CHASH_ETOOBIG = -8
CHASH_ENOTSUP = -9
CHASH_EUNKNOWN = -10
CHASH_ESIZE = -11


class ChashError(Exception):
    """An error returned by libchash.

    Attributes: ``code`` (the negative chash_error value), ``name`` (its name
    in chash.h, e.g. ``"CHASH_EEXIST"``), ``strerror`` (chash_strerror's
    message) and ``call`` (the C function and what it was given).
    """

    def __init__(self, code: int, call: str, detail: str = "") -> None:
        self.code = code
        self.name = ERROR_NAMES.get(code, "CHASH_E%d" % code)
        self.strerror = _strerror(code)
        self.call = call
        text = "%s: %s (%s)" % (call, self.strerror, self.name)
        if detail:
            text += ": " + detail
        super().__init__(text)


def _strerror(code: int) -> str:
    try:
        raw = _lib.chash_strerror(code)
    except Exception:  # the library failed to load: say the code at least
        return "error %d" % code
    return str(raw.decode("utf-8", "replace")) if raw else "error %d" % code


def _check(rc: int, call: str, detail: str = "") -> None:
    if rc != CHASH_OK:
        raise ChashError(rc, call, detail)


# ---- the library ------------------------------------------------------------

_size_t = ctypes.c_size_t
_u32 = ctypes.c_uint32
_u64 = ctypes.c_uint64
_int = ctypes.c_int


class _Allocator(ctypes.Structure):
    _fields_ = [
        ("malloc_fn", ctypes.c_void_p),
        ("realloc_fn", ctypes.c_void_p),
        ("free_fn", ctypes.c_void_p),
        ("user", ctypes.c_void_p),
    ]


class _Config(ctypes.Structure):
    """chash_config as chash.h 1.2 lays it out (ctypes aligns as C does)."""

    _fields_ = [
        ("struct_size", _size_t),
        ("algo", _int),
        ("scheme", _int),
        ("vnodes", _u32),
        ("allocator", _Allocator),
        ("key_hash", _int),
        ("hash_tag", ctypes.c_char * 4),
        ("maglev_table_size", _u32),
        ("probe_count", _u32),
        ("load_epsilon", ctypes.c_double),
        ("bucket_count", _u32),
        ("bucket_by", _int),
    ]


class _NodeSpec(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("name_len", _size_t), ("weight", _u32)]


class _Range(ctypes.Structure):
    _fields_ = [("first", _u32), ("last", _u32), ("from_", _size_t), ("to", _size_t)]


class _BucketRange(ctypes.Structure):
    _fields_ = [
        ("first", _u32),
        ("last", _u32),
        ("from_", _size_t),
        ("to", _size_t),
        ("from_name", ctypes.c_void_p),
        ("from_name_len", _size_t),
        ("to_name", ctypes.c_void_p),
        ("to_name_len", _size_t),
    ]


_RANGE_FN = ctypes.CFUNCTYPE(_int, ctypes.c_void_p, ctypes.POINTER(_Range))
_BUCKET_RANGE_FN = ctypes.CFUNCTYPE(_int, ctypes.c_void_p, ctypes.POINTER(_BucketRange))

_P = ctypes.c_void_p  # chash *, chash_loads *
_B = ctypes.c_char_p  # key and name bytes (with an explicit length)
_SIGNATURES: Dict[str, Tuple[Any, List[Any]]] = {
    "chash_version": (ctypes.c_uint, []),
    "chash_version_string": (ctypes.c_char_p, []),
    "chash_strerror": (ctypes.c_char_p, [_int]),
    "chash_algo_name": (ctypes.c_char_p, [_int]),
    "chash_scheme_name": (ctypes.c_char_p, [_int]),
    "chash_hash_name": (ctypes.c_char_p, [_int]),
    "chash_bucket_by_name": (ctypes.c_char_p, [_int]),
    "chash_algo_from_name": (_int, [ctypes.c_char_p, ctypes.POINTER(_int)]),
    "chash_scheme_from_name": (_int, [ctypes.c_char_p, ctypes.POINTER(_int)]),
    "chash_hash_from_name": (_int, [ctypes.c_char_p, ctypes.POINTER(_int)]),
    "chash_bucket_by_from_name": (_int, [ctypes.c_char_p, ctypes.POINTER(_int)]),
    "chash_create": (_int, [ctypes.POINTER(_Config), ctypes.POINTER(_P)]),
    "chash_free": (None, [_P]),
    "chash_clone": (_int, [_P, ctypes.POINTER(_P)]),
    "chash_add": (_int, [_P, _B, _size_t, _u32]),
    "chash_add_many": (_int, [_P, ctypes.POINTER(_NodeSpec), _size_t]),
    "chash_remove": (_int, [_P, _B, _size_t]),
    "chash_set_weight": (_int, [_P, _B, _size_t, _u32]),
    "chash_node_count": (_size_t, [_P]),
    "chash_node": (_int, [_P, _size_t, ctypes.POINTER(ctypes.c_void_p),
                          ctypes.POINTER(_size_t), ctypes.POINTER(_u32)]),
    "chash_find": (_int, [_P, _B, _size_t, ctypes.POINTER(_size_t)]),
    "chash_key_hash": (_u64, [_P, _B, _size_t]),
    "chash_lookup": (_int, [_P, _B, _size_t, ctypes.POINTER(_size_t)]),
    "chash_lookup_hash": (_int, [_P, _u64, ctypes.POINTER(_size_t)]),
    "chash_lookup_n": (_int, [_P, _B, _size_t, _size_t, ctypes.POINTER(_size_t),
                              ctypes.POINTER(_size_t)]),
    "chash_ownership": (_int, [_P, ctypes.POINTER(_u64), _size_t, ctypes.POINTER(_u64)]),
    "chash_point_count": (_size_t, [_P]),
    "chash_memory": (_size_t, [_P]),
    "chash_get_config": (_int, [_P, ctypes.POINTER(_Config)]),
    "chash_diff": (_int, [_P, _P, _RANGE_FN, ctypes.c_void_p]),
    "chash_bucket_diff": (_int, [_P, _P, _BUCKET_RANGE_FN, ctypes.c_void_p]),
    "chash_loads_create": (_int, [_P, ctypes.POINTER(_P)]),
    "chash_loads_free": (None, [_P]),
    "chash_loads_acquire": (_int, [_P, _size_t]),
    "chash_lookup_bounded": (_int, [_P, _P, _B, _size_t, ctypes.POINTER(_size_t)]),
}


def _candidates() -> List[str]:
    env = os.environ.get("CHASH_LIBRARY")
    if env:
        return [env]  # when set, only this one: a test must not fall back
    found = ctypes.util.find_library("chash")
    names = [found] if found else []
    return names + ["libchash.so.1", "libchash.so", "libchash.1.dylib", "libchash.dylib"]


def _declare(lib: Any) -> Any:
    for fn, (restype, argtypes) in _SIGNATURES.items():
        f = getattr(lib, fn)
        f.restype = restype
        f.argtypes = argtypes
    return lib


def _load() -> Tuple[Any, Any, str]:
    errors = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            errors.append("%s: %s" % (name, e))
            continue
        _declare(lib)
        major = lib.chash_version() // 10000
        if major != 1:
            raise ImportError("%s is libchash %s; these bindings need major version 1"
                              % (name, lib.chash_version_string().decode()))
        # The same library (dlopen gives the same handle) called through
        # PyDLL, which keeps the GIL during the call: for the lookups, which
        # take well under a microsecond, that is cheaper than releasing and
        # taking it back. Everything else goes through CDLL and lets other
        # Python threads run meanwhile.
        return lib, _declare(ctypes.PyDLL(name)), name
    raise ImportError("cannot load libchash (set CHASH_LIBRARY to the path of libchash.so): "
                      + "; ".join(errors))


_lib, _fast, _lib_name = _load()
_lookup = _fast.chash_lookup
_byref = ctypes.byref


def library_version() -> str:
    """The version of the loaded libchash, "MAJOR.MINOR.PATCH". O(1)."""
    return str(_lib.chash_version_string().decode())


def library_path() -> str:
    """The name or path the library was loaded from (CHASH_LIBRARY if set)."""
    return _lib_name


def _names(fn: Any) -> List[str]:
    out: List[str] = []
    i = 0
    while True:
        raw = fn(i)
        if raw is None:
            return out
        out.append(raw.decode())
        i += 1


#: Every algorithm name the loaded library knows, in enum order.
ALGORITHMS: List[str] = _names(_lib.chash_algo_name)
#: Every scheme name, in enum order.
SCHEMES: List[str] = _names(_lib.chash_scheme_name)
#: Every key hash name ("default" first), in enum order.
KEY_HASHES: List[str] = _names(_lib.chash_hash_name)
# simulate's "all": as `chash simulate --algo all`, every algorithm.
_SIMULATE_ALL = list(ALGORITHMS)


def _enum(fn: Any, kind: str, value: str) -> int:
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (kind, type(value).__name__))
    out = _int()
    rc = fn(value.encode(), ctypes.byref(out))
    _check(rc, "chash_%s_from_name" % kind.replace("-", "_"), "%s %r" % (kind, value))
    return out.value


def _key_bytes(key: Key) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8", "surrogateescape")
    if isinstance(key, (bytearray, memoryview)):
        return bytes(key)
    raise TypeError("key must be str or bytes, not %s" % type(key).__name__)


def _name_bytes(name: Name) -> bytes:
    if isinstance(name, bytes):
        return name
    if isinstance(name, str):
        return name.encode("utf-8", "surrogateescape")
    raise TypeError("node name must be str or bytes, not %s" % type(name).__name__)


def _name_str(raw: bytes) -> str:
    # surrogateescape: any bytes round-trip (str -> same bytes on the way in).
    return raw.decode("utf-8", "surrogateescape")


def _weight(weight: int) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise TypeError("weight must be an int, not %s" % type(weight).__name__)
    if not 0 <= weight <= 0xFFFFFFFF:
        # The library's own range check (1..65535) answers CHASH_EWEIGHT;
        # this only keeps the value inside C's uint32_t.
        raise ChashError(CHASH_EWEIGHT, "chash_add", "weight %d" % weight)
    return weight


# ---- the ring -----------------------------------------------------------------


def _made(out: Any) -> int:
    """The object a successful chash_create or chash_clone wrote to out."""
    c = out.value
    if not c:
        raise ChashError(CHASH_ENOMEM, "chash_create", "no object returned")
    return int(c)


class _Snapshot:
    """One C object that is never changed again, and its node names.

    A Ring publishes a new snapshot for every change (a clone, changed, as
    chash.h's "Publishing changes" does with an atomic pointer); a lookup
    takes the Ring's current snapshot into a local variable, so its C call
    and the index -> name step see the same membership whatever another
    thread does meanwhile. The C object is freed when the last reference
    goes: CPython's reference count plays the part of the C pattern's epoch.
    """

    __slots__ = ("c", "names")

    def __init__(self, c: int) -> None:
        self.c: Optional[int] = c  # owned from here on, even if reading the names fails
        self.names: List[str] = []
        ptr, length = ctypes.c_void_p(), _size_t()
        for i in range(_lib.chash_node_count(c)):
            _check(_lib.chash_node(c, i, ctypes.byref(ptr), ctypes.byref(length), None),
                   "chash_node")
            self.names.append(_name_str(ctypes.string_at(ptr, length.value)))

    def __del__(self) -> None:
        c, self.c = self.c, None
        if c and _lib is not None:  # module globals may be gone at exit
            _lib.chash_free(c)


class Ring:
    """A placement: a membership (named, weighted nodes) and one algorithm.

    ``Ring(algo="ring", scheme="native", vnodes=160, ...)`` makes an empty
    placement (``chash_create``). Options, as chash_config in chash.h (0 or
    the default string means the library's default):

    - ``algo``: one of :data:`ALGORITHMS` (ring, modulo, jump, rendezvous,
      maglev, multiprobe, bounded, memento, buckets).
    - ``scheme``: one of :data:`SCHEMES` (native, groupcache, ketama,
      twemproxy, nginx, redis-cluster); the presets place keys exactly as
      their peer program does.
    - ``vnodes``: ring points per unit of weight (0 = 160).
    - ``key_hash``: one of :data:`KEY_HASHES` ("default": the scheme's own).
    - ``hash_tag``: "" or two characters such as "{}" (twemproxy's).
    - ``maglev_table_size``, ``probe_count``, ``load_epsilon``,
      ``bucket_count``, ``bucket_by`` ("hash" or "digits"): the algorithms'
      options.

    Errors: ChashError CHASH_EUNKNOWN for a name the library does not know,
    CHASH_EINVAL for an option out of range or a scheme the algorithm cannot
    use, CHASH_ENOMEM. Cost: O(1) (buckets O(bucket_count)).

    Threads: lookups never lock and may run in any number of threads while
    another thread changes the Ring: each change is made on a clone that is
    then published (so a change costs O(nodes + points) more, the order of
    the change itself); changes are serialized by a lock.

    The Ring owns its C object: use it in a ``with`` block or call
    :meth:`close`; otherwise it is freed when garbage collected. Any call on
    a closed Ring raises ValueError.
    """

    def __init__(
        self,
        algo: str = "ring",
        scheme: str = "native",
        vnodes: int = 160,
        *,
        key_hash: str = "default",
        hash_tag: Union[str, bytes] = "",
        maglev_table_size: int = 0,
        probe_count: int = 0,
        load_epsilon: float = 0.0,
        bucket_count: int = 0,
        bucket_by: str = "hash",
    ) -> None:
        self._snap: Optional[_Snapshot] = None  # first: close() works after a failure
        self._lock = threading.Lock()
        cfg = _Config()
        cfg.struct_size = ctypes.sizeof(_Config)
        cfg.algo = _enum(_lib.chash_algo_from_name, "algo", algo)
        cfg.scheme = _enum(_lib.chash_scheme_from_name, "scheme", scheme)
        cfg.key_hash = _enum(_lib.chash_hash_from_name, "hash", key_hash)
        cfg.bucket_by = _enum(_lib.chash_bucket_by_from_name, "bucket_by", bucket_by)
        for field, value in (("vnodes", vnodes), ("maglev_table_size", maglev_table_size),
                             ("probe_count", probe_count), ("bucket_count", bucket_count)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("%s must be an int" % field)
            if not 0 <= value <= 0xFFFFFFFF:
                raise ChashError(CHASH_EINVAL, "chash_create", "%s %d" % (field, value))
            setattr(cfg, field, value)
        cfg.load_epsilon = float(load_epsilon)
        tag = hash_tag.encode() if isinstance(hash_tag, str) else bytes(hash_tag)
        if len(tag) > 3:
            raise ChashError(CHASH_EINVAL, "chash_create", "hash_tag %r" % (hash_tag,))
        cfg.hash_tag = tag
        out = _P()
        _check(_lib.chash_create(ctypes.byref(cfg), ctypes.byref(out)), "chash_create",
               "algo %r, scheme %r" % (algo, scheme))
        self._snap = _Snapshot(_made(out))

    @classmethod
    def _adopt(cls, handle: int) -> "Ring":
        ring = cls.__new__(cls)
        ring._snap = None
        ring._lock = threading.Lock()
        ring._snap = _Snapshot(handle)
        return ring

    # -- lifetime --

    def close(self) -> None:
        """Release the C object (``chash_free``): at once, or when a lookup
        another thread is running on it returns. Idempotent. O(nodes +
        points)."""
        with self._lock:
            self._snap = None

    def __enter__(self) -> "Ring":
        self._get()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # No __del__ of its own: the snapshot's frees the C object when the
    # Ring (and any lookup still using the snapshot) lets go of it.

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._snap is None

    def _get(self) -> _Snapshot:
        snap = self._snap
        if snap is None:
            raise ValueError("operation on a closed chash.Ring")
        return snap

    def _change(self, call: str, detail: str, fn: Any, *args: Any) -> None:
        """Publish a clone changed by fn(clone, *args), or raise and change
        nothing."""
        with self._lock:
            out = _P()
            _check(_lib.chash_clone(self._get().c, ctypes.byref(out)), "chash_clone")
            c = _made(out)
            try:
                rc = fn(c, *args)
            except BaseException:
                _lib.chash_free(c)
                raise
            if rc != CHASH_OK:
                _lib.chash_free(c)
                raise ChashError(rc, call, detail)
            self._snap = _Snapshot(c)

    def clone(self) -> "Ring":
        """An independent copy (``chash_clone``): change it while this one is
        still read, then compare the two with :func:`plan`. Errors:
        ChashError CHASH_ENOMEM. Cost: O(nodes + points)."""
        out = _P()
        _check(_lib.chash_clone(self._get().c, ctypes.byref(out)), "chash_clone")
        return Ring._adopt(_made(out))

    __copy__ = clone

    # -- membership --

    def add(self, name: Name, weight: int = 1) -> None:
        """Make ``name`` (str or bytes) a member with ``weight`` (1..65535).

        Errors: ChashError CHASH_EEXIST (already a member), CHASH_ENAME (empty
        or longer than 4096 bytes), CHASH_EWEIGHT, CHASH_ETOOBIG, CHASH_EINVAL
        (ketama/twemproxy with too few vnodes), CHASH_ENOMEM. Cost:
        O(points) for the ring (the new points merged in), O(nodes) or
        O(buckets) for most others, maglev O(table log table); plus the
        clone, O(nodes + points). To add many, :meth:`add_many` is cheaper.
        """
        raw = _name_bytes(name)
        self._change("chash_add", "node %r" % (name,), _lib.chash_add, raw, len(raw),
                     _weight(weight))

    def add_many(self, nodes: Nodes) -> None:
        """Add several nodes in order, rebuilding once (``chash_add_many``):
        names, or (name, weight) pairs (or a count N: node-0 .. node-N-1). All or nothing: on any error (as
        :meth:`add`; CHASH_EEXIST also for a name repeated in ``nodes``) no
        node is added. Cost: O(points log points)."""
        pairs = _node_pairs(nodes)
        specs = (_NodeSpec * max(1, len(pairs)))()
        for i, (raw, w) in enumerate(pairs):
            specs[i].name = raw  # `pairs` keeps the bytes alive for the call
            specs[i].name_len = len(raw)
            specs[i].weight = _weight(w)
        self._change("chash_add_many", "", _lib.chash_add_many, specs, len(pairs))

    def remove(self, name: Name) -> None:
        """Drop a member; the indexes of later nodes shift down. Errors:
        ChashError CHASH_ENOENT (not a member), CHASH_ENOTSUP (jump: any node
        but the last), CHASH_ENOMEM. Cost: O(points) and the clone."""
        raw = _name_bytes(name)
        self._change("chash_remove", "node %r" % (name,), _lib.chash_remove, raw, len(raw))

    def set_weight(self, name: Name, weight: int) -> None:
        """Change a member's weight. Errors: ChashError CHASH_ENOENT,
        CHASH_EWEIGHT, CHASH_ETOOBIG, CHASH_ENOTSUP (jump: any node but the
        last), CHASH_ENOMEM. Cost: O(points) and the clone."""
        raw = _name_bytes(name)
        self._change("chash_set_weight", "node %r" % (name,), _lib.chash_set_weight, raw,
                     len(raw), _weight(weight))

    def __len__(self) -> int:
        """The number of member nodes. O(1)."""
        return len(self._get().names)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a member (``chash_find``). O(1) expected."""
        if not isinstance(name, (str, bytes)):
            return False
        raw = _name_bytes(name)
        idx = _size_t()
        return bool(_lib.chash_find(self._get().c, raw, len(raw), ctypes.byref(idx)) == CHASH_OK)

    def nodes(self) -> List[str]:
        """The members' names in index order (the order they were added,
        removals closing the gaps). A new list each call; names that are not
        UTF-8 come back with surrogate escapes (they encode back to the same
        bytes). Cost: O(nodes)."""
        return list(self._get().names)

    def weights(self) -> Dict[str, int]:
        """Each member's weight, by name. Cost: O(nodes)."""
        return _weights(self._get())

    # -- lookups --

    def lookup(self, key: Key) -> str:
        """The node that owns ``key`` (str, encoded as UTF-8, or bytes).

        Errors: ChashError CHASH_EEMPTY (no nodes). Cost: one C call, O(1)
        expected for the ring (rendezvous O(nodes), multiprobe O(k log N));
        nothing is allocated in C. Bounded rings give the ring's owner here
        (no live loads are known).
        """
        snap = self._snap
        if snap is None:
            raise ValueError("operation on a closed chash.Ring")
        raw = key if type(key) is bytes else _key_bytes(key)
        node = _size_t()
        rc = _lookup(snap.c, raw, len(raw), _byref(node))
        if rc != CHASH_OK:
            raise ChashError(rc, "chash_lookup")
        return snap.names[node.value]

    def lookup_index(self, key: Key) -> int:
        """As :meth:`lookup`, the owner's index into :meth:`nodes` (which
        another thread's change may shift: use :meth:`lookup` then)."""
        raw = key if type(key) is bytes else _key_bytes(key)
        node = _size_t()
        _check(_lookup(self._get().c, raw, len(raw), _byref(node)), "chash_lookup")
        return node.value

    def lookup_n(self, key: Key, n: int) -> List[str]:
        """A replica preference list: up to ``n`` distinct nodes, the owner
        first, then the next distinct nodes in the algorithm's order
        (``chash_lookup_n``): min(n, len(ring)) names, fewer only when some
        node has no point (ketama/twemproxy weights far below the mean).

        Errors: TypeError, ValueError (n < 0); ChashError CHASH_EEMPTY (no
        nodes), and CHASH_ENOTSUP for the algorithms with no ring order -
        modulo, jump, maglev, memento. Cost: O(n^2 + points walked) in C,
        rendezvous O(nodes log n); nothing allocated in C.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be an int")
        if n < 0:
            raise ValueError("n must be >= 0, got %d" % n)
        snap = self._get()
        raw = _key_bytes(key)
        want = min(n, len(snap.names))
        out = (_size_t * max(1, want))()
        found = _size_t()
        rc = _fast.chash_lookup_n(snap.c, raw, len(raw), want, out, _byref(found))
        if rc == CHASH_ENOTSUP:
            raise ChashError(rc, "chash_lookup_n",
                             "the %s algorithm has no ring order, so no replica list; "
                             "use ring, rendezvous, multiprobe, bounded or buckets"
                             % self.algo)
        _check(rc, "chash_lookup_n")
        return [snap.names[out[i]] for i in range(found.value)]

    def key_hash(self, key: Key) -> int:
        """Where ``key`` lands: its position in the hash space
        (``chash_key_hash``; 32 bits for the ring schemes). Pure; O(len)."""
        raw = _key_bytes(key)
        return int(_fast.chash_key_hash(self._get().c, raw, len(raw)))

    def lookup_hash(self, position: int) -> str:
        """The owner of a :meth:`key_hash` value (``chash_lookup_hash``).
        Errors: ChashError CHASH_EEMPTY. Cost: as :meth:`lookup`."""
        snap = self._get()
        node = _size_t()
        _check(_fast.chash_lookup_hash(snap.c, position, _byref(node)), "chash_lookup_hash")
        return snap.names[node.value]

    # -- figures --

    def ownership(self, samples: int = 1_000_000, seed: int = 1) -> Dict[str, Any]:
        """Each node's share of the keys, beside its weighted ideal.

        Exact where the library has it (``chash_ownership``: ring, modulo,
        maglev, bounded, buckets - from the arcs, table or buckets, no
        sampling; ``exact`` is True and ``space`` the size of the hash space,
        2**32 for the ring schemes). For jump, rendezvous, multiprobe and
        memento, which have no exact answer, it is measured: ``samples``
        keys ``key-<hex>`` from ``seed`` (:func:`sample_key`, the CLI's keys)
        are looked up; ``exact`` is False and ``space`` is ``samples``.

        Returns ``{"exact", "space", "nodes": [{"name", "weight", "hashes",
        "share", "ideal", "deviation"}], "max_abs_deviation",
        "stddev_deviation"}``, nodes in index order, ``hashes`` the count
        (hash values or sampled keys) behind ``share``; as ``chash
        ownership --json``. Errors: ChashError CHASH_EEMPTY. Cost: O(points)
        (maglev O(table), buckets O(buckets)) exact; one lookup per sample
        otherwise (about 0.5 s per million keys).
        """
        snap = self._get()
        c, count = snap.c, len(snap.names)
        shares = (_u64 * max(1, count))()
        space = _u64()
        rc = _lib.chash_ownership(c, shares, max(1, count), ctypes.byref(space))
        exact = rc != CHASH_ENOTSUP
        if exact:
            _check(rc, "chash_ownership")
            counts = [int(shares[i]) for i in range(count)]
            total = int(space.value)
        else:
            if samples <= 0:
                raise ValueError("samples must be > 0")
            counts = [0] * count
            node = _size_t()
            ref = _byref(node)
            for i in range(samples):
                raw = sample_key(seed, i)
                _check(_lookup(c, raw, len(raw), ref), "chash_lookup")
                counts[node.value] += 1
            total = samples
        weights = _weights(snap)
        total_weight = sum(weights.values())
        rows, worst, sq = [], 0.0, 0.0
        for i, name in enumerate(snap.names):
            share = counts[i] / total
            ideal = weights[name] / total_weight
            dev = share / ideal - 1
            if abs(dev) > abs(worst):
                worst = dev
            sq += dev * dev
            rows.append({"name": name, "weight": weights[name], "hashes": counts[i],
                         "share": share, "ideal": ideal, "deviation": dev})
        return {"exact": exact, "space": total, "nodes": rows,
                "max_abs_deviation": abs(worst), "stddev_deviation": math.sqrt(sq / count)}

    @property
    def config(self) -> Dict[str, Any]:
        """The configuration, defaults filled in (``chash_get_config``):
        algo, scheme, vnodes, key_hash, hash_tag, maglev_table_size,
        probe_count, load_epsilon, bucket_count, bucket_by. O(1)."""
        cfg = _Config()
        cfg.struct_size = ctypes.sizeof(_Config)
        _check(_lib.chash_get_config(self._get().c, ctypes.byref(cfg)), "chash_get_config")

        def name(fn: Any, value: int) -> str:
            raw = fn(value)
            return str(raw.decode()) if raw else str(value)

        return {
            "algo": name(_lib.chash_algo_name, cfg.algo),
            "scheme": name(_lib.chash_scheme_name, cfg.scheme),
            "vnodes": cfg.vnodes,
            "key_hash": name(_lib.chash_hash_name, cfg.key_hash),
            "hash_tag": cfg.hash_tag.decode("latin-1"),
            "maglev_table_size": cfg.maglev_table_size,
            "probe_count": cfg.probe_count,
            "load_epsilon": cfg.load_epsilon,
            "bucket_count": cfg.bucket_count,
            "bucket_by": name(_lib.chash_bucket_by_name, cfg.bucket_by),
        }

    @property
    def algo(self) -> str:
        """The algorithm's name."""
        return str(self.config["algo"])

    @property
    def scheme(self) -> str:
        """The scheme's name."""
        return str(self.config["scheme"])

    def point_count(self) -> int:
        """Points on the ring (0 for algorithms without points). O(1)."""
        return int(_lib.chash_point_count(self._get().c))

    def memory(self) -> int:
        """Bytes of heap the C object holds (``chash_memory``). O(1)."""
        return int(_lib.chash_memory(self._get().c))

    def __repr__(self) -> str:
        snap = self._snap
        if snap is None:
            return "<chash.Ring closed>"
        cfg = self.config
        return "<chash.Ring algo=%s scheme=%s vnodes=%d nodes=%d>" % (
            cfg["algo"], cfg["scheme"], cfg["vnodes"], len(snap.names))


def _weights(snap: _Snapshot) -> Dict[str, int]:
    out: Dict[str, int] = {}
    w = _u32()
    for i, name in enumerate(snap.names):
        _check(_lib.chash_node(snap.c, i, None, None, ctypes.byref(w)), "chash_node")
        out[name] = w.value
    return out


def _node_pairs(nodes: Nodes) -> List[Tuple[bytes, int]]:
    if isinstance(nodes, bool):
        raise TypeError("nodes must be a count or an iterable of names")
    if isinstance(nodes, int):
        if nodes < 0:
            raise ValueError("node count must be >= 0")
        return [(b"node-%d" % i, 1) for i in range(nodes)]
    if isinstance(nodes, (str, bytes)):
        raise TypeError("nodes must be an iterable of names, not one name")
    out = []
    for item in nodes:
        if isinstance(item, tuple):
            name, weight = item
            out.append((_name_bytes(name), weight))
        else:
            out.append((_name_bytes(item), 1))
    return out


def sample_key(seed: int, i: int) -> bytes:
    """Key ``i`` of ``seed`` as the ``chash`` CLI makes them: b"key-" and 16
    hex digits of splitmix64(seed, i). :func:`simulate` and the sampled
    :meth:`Ring.ownership` and :func:`plan` use these, so their figures
    equal the CLI's. O(1)."""
    m = 0xFFFFFFFFFFFFFFFF
    z = (seed * 0x9E3779B97F4A7C15 + i * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    z ^= z >> 31
    return b"key-%016x" % z


def _build(nodes: Union[Ring, Nodes], config: Dict[str, Any]) -> Tuple[Ring, bool]:
    """A Ring from a Ring (not owned) or from a membership and options (owned)."""
    if isinstance(nodes, Ring):
        return nodes, False
    ring = Ring(**config)
    try:
        ring.add_many(nodes)
    except BaseException:
        ring.close()
        raise
    return ring, True


def ownership(nodes: Union[Ring, Nodes] = 10, *, samples: int = 1_000_000, seed: int = 1,
              **config: Any) -> Dict[str, Any]:
    """Each node's share of the key space: :meth:`Ring.ownership` of a Ring,
    or of a membership (a count N for node-0..node-(N-1), names, or (name,
    weight) pairs) placed with ``config`` (Ring's options: algo, scheme,
    vnodes, ...). Exact from the library for ring, modulo, maglev, bounded
    and buckets; measured over ``samples`` keys for the others (the result
    says which in ``exact``). Errors: as Ring() and add_many, ChashError
    CHASH_EEMPTY. Cost: see :meth:`Ring.ownership`."""
    ring, owned = _build(nodes, config)
    try:
        return ring.ownership(samples=samples, seed=seed)
    finally:
        if owned:
            ring.close()


def _bucket_hashes(first: int, last: int, buckets: int) -> int:
    """How many 32-bit values v have v mod buckets in first..last."""
    space = 1 << 32

    def upto(b: int) -> int:  # values with v mod buckets < b
        full, rest = divmod(space, buckets)
        return full * b + min(b, rest)

    return upto(last + 1) - upto(first)


def plan(old: Union[Ring, Nodes], new: Union[Ring, Nodes], *,
         keys: Optional[Iterable[Key]] = None, samples: int = 1_000_000,
         **config: Any) -> Dict[str, Any]:
    """The migration from placement ``old`` to ``new`` (Rings, or
    memberships placed with ``config`` as in :func:`ownership`).

    Exact where the library can say it: ring placements through
    ``chash_diff`` (``kind`` "hash": every range of the 32-bit key-hash
    space whose owner changes, as ``chash plan --json`` lists them),
    buckets through ``chash_bucket_diff`` (``kind`` "bucket": runs of
    buckets; ``moved_fraction`` is the share of 32-bit key hashes in them,
    overrides not counted). For the other algorithms the library has no
    ranges: ``kind`` is "sampled", ``exact`` False, and the fractions are
    measured on ``samples`` CLI keys (:func:`sample_key` seed 1), as the
    CLI does.

    Returns ``{"exact", "kind", "algo", "scheme", "nodes_from", "nodes_to",
    "moved_fraction", "pairs": [{"from", "to", "fraction"}] (largest
    first), "ranges": [{"first", "last", "from", "to"}]}`` (``ranges``
    empty when sampled), plus with ``keys`` given ``"keys": [{"key",
    "from", "to"}]`` for each key whose owner changes, ``keys_total`` and
    ``keys_moved``. Nodes are matched by name.

    Errors: ChashError CHASH_ENOTSUP (placements whose keys do not land
    alike: different scheme, key hash, hash tag or bucket options),
    CHASH_EEMPTY (one side empty). Cost: O(points) (buckets O(buckets)) in
    C plus one Python call per range; sampled, two lookups per sample.
    """
    a, own_a = _build(old, config)
    try:
        b, own_b = _build(new, config)
    except BaseException:
        if own_a:
            a.close()
        raise
    try:
        return _plan(a, b, keys, samples)
    finally:
        if own_a:
            a.close()
        if own_b:
            b.close()


def _plan(a: Ring, b: Ring, keys: Optional[Iterable[Key]], samples: int) -> Dict[str, Any]:
    sa, sb = a._get(), b._get()  # one membership each for the whole plan
    ca, cb = sa.c, sb.c
    cfg = a.config
    names_a, names_b = sa.names, sb.names
    ranges: List[Dict[str, Any]] = []
    pairs: Dict[Tuple[str, str], int] = {}
    moved = 0

    def note(first: int, last: int, frm: str, to: str, hashes: int) -> None:
        nonlocal moved
        ranges.append({"first": first, "last": last, "from": frm, "to": to})
        pairs[(frm, to)] = pairs.get((frm, to), 0) + hashes
        moved += hashes

    def on_range(_user: Any, r: Any) -> int:
        x = r.contents
        note(x.first, x.last, names_a[x.from_], names_b[x.to], x.last - x.first + 1)
        return 0

    def on_bucket(_user: Any, r: Any) -> int:
        x = r.contents
        note(x.first, x.last, names_a[x.from_], names_b[x.to],
             _bucket_hashes(x.first, x.last, cfg["bucket_count"]))
        return 0

    if cfg["algo"] == "buckets":
        kind, fn = "bucket", _BUCKET_RANGE_FN(on_bucket)
        rc = _lib.chash_bucket_diff(ca, cb, fn, None)
        call = "chash_bucket_diff"
    else:
        kind, fn = "hash", _RANGE_FN(on_range)
        rc = _lib.chash_diff(ca, cb, fn, None)
        call = "chash_diff"
    if rc == CHASH_ENOTSUP and cfg["algo"] not in ("ring", "buckets"):
        kind, ranges, pairs, moved = "sampled", [], {}, 0
        if samples <= 0:
            raise ValueError("samples must be > 0")
        for i in range(samples):
            k = sample_key(1, i)
            frm, to = a.lookup(k), b.lookup(k)
            if frm != to:
                pairs[(frm, to)] = pairs.get((frm, to), 0) + 1
                moved += 1
    else:
        _check(rc, call)
    denominator = float(samples if kind == "sampled" else 1 << 32)
    out: Dict[str, Any] = {
        "exact": kind != "sampled",
        "kind": kind,
        "algo": cfg["algo"],
        "scheme": cfg["scheme"],
        "nodes_from": len(names_a),
        "nodes_to": len(names_b),
        "moved_fraction": moved / denominator,
        "pairs": [{"from": f, "to": t, "fraction": h / denominator}
                  for (f, t), h in sorted(pairs.items(), key=lambda p: -p[1])],
        "ranges": ranges,
    }
    if kind == "sampled":
        out["sampled_keys"] = samples
    if keys is not None:
        moves, total = [], 0
        for key in keys:
            total += 1
            frm, to = a.lookup(key), b.lookup(key)
            if frm != to:
                moves.append({"key": key, "from": frm, "to": to})
        out.update(keys=moves, keys_total=total, keys_moved=len(moves))
    return out


def _ideal_moved(weights: Sequence[int], before: Sequence[bool],
                 after: Sequence[bool]) -> float:
    wb = sum(w for w, x in zip(weights, before) if x)
    wa = sum(w for w, x in zip(weights, after) if x)
    kept = sum(min(w / wb, w / wa) for w, x, y in zip(weights, before, after) if x and y)
    return 1.0 - kept


def simulate(nodes: Nodes = 10, *, add: int = 1, remove: int = 0, keys: int = 100_000,
             algos: Union[str, Sequence[str]] = ("modulo", "ring"), seed: int = 1,
             **config: Any) -> Dict[str, Any]:
    """A membership change measured on sampled keys, per algorithm, as
    ``chash simulate --json`` (the CLI computes it in cli/, so this is the
    same computation over the public C API, with the same keys: the
    figures are identical for the same arguments).

    ``nodes``: the membership before (a count N for node-0..node-(N-1),
    names, or (name, weight) pairs). The change adds ``add`` nodes named
    node-<n> (weight 1, the smallest n not taken) and removes the last
    ``remove``. ``keys`` keys (:func:`sample_key` of ``seed``) are placed
    before and after by each of ``algos`` (names, a comma-separated string,
    or "all": every algorithm, as the CLI's); bounded places each key against
    the live loads so far (``chash_lookup_bounded``). ``config``: Ring's
    other options (scheme, vnodes, key_hash, ...).

    Returns ``{"nodes_before", "nodes_after", "keys", "scheme", "vnodes",
    "seed", "ideal_moved_fraction", "added": [names], "removed": [names],
    "results": [{"algo", "moved_fraction", "ideal_moved_fraction",
    "max_over_mean", "min_over_mean", "stddev_over_mean", "nodes": [{"name",
    "weight", "keys_before"?, "keys_after"?}]}]}``; the load figures are
    after the change, each node's keys over its weighted fair share.

    Errors: ValueError (remove leaves no node, an algorithm twice),
    ChashError from building the placements. Cost: O(keys * algos) lookups
    from Python, about 1 s per million key-algorithm pairs here.
    """
    if isinstance(algos, str):
        algos = _SIMULATE_ALL if algos == "all" else [a for a in algos.split(",") if a]
    algos = list(algos)
    if not algos or len(set(algos)) != len(algos):
        raise ValueError("algos: give distinct algorithm names, got %r" % (algos,))
    if keys <= 0:
        raise ValueError("keys must be > 0")
    before = _node_pairs(nodes)
    if remove < 0 or add < 0:
        raise ValueError("add and remove must be >= 0")
    if remove >= len(before):
        raise ValueError("remove=%d would leave no nodes of %d" % (remove, len(before)))
    all_nodes = list(before)
    taken = {n for n, _ in all_nodes}
    n = 0
    for _ in range(add):
        while b"node-%d" % n in taken:
            n += 1
        all_nodes.append((b"node-%d" % n, 1))
        taken.add(b"node-%d" % n)
    count_before = len(before)
    in_before = [g < count_before for g in range(len(all_nodes))]
    in_after = [g < count_before - remove or g >= count_before for g in range(len(all_nodes))]
    after = [p for p, x in zip(all_nodes, in_after) if x]
    index = {name: g for g, (name, _) in enumerate(all_nodes)}
    weights = [w for _, w in all_nodes]
    ideal = _ideal_moved(weights, in_before, in_after)

    runs = []
    try:
        for algo in algos:
            cfg = dict(config, algo=algo)
            rb, _ = _build(before, cfg)
            runs.append([rb])
            ra, _ = _build(after, cfg)
            runs[-1].append(ra)
        results = [_simulate_run(rb, ra, index, len(all_nodes), keys, seed)
                   for rb, ra in runs]
    finally:
        for pair in runs:
            for ring in pair:
                ring.close()
    scheme = config.get("scheme", "native")
    vnodes = config.get("vnodes", 160) or 160
    out_results = []
    total_weight = sum(w for w, x in zip(weights, in_after) if x)
    for algo, (moved, load_before, load_after) in zip(algos, results):
        ratios = [load_after[g] / (keys * weights[g] / total_weight)
                  for g in range(len(all_nodes)) if in_after[g]]
        mean = sum(ratios) / len(ratios)
        var = max(0.0, sum(r * r for r in ratios) / len(ratios) - mean * mean)
        rows = []
        for g, (name, w) in enumerate(all_nodes):
            row: Dict[str, Any] = {"name": _name_str(name), "weight": w}
            if in_before[g]:
                row["keys_before"] = load_before[g]
            if in_after[g]:
                row["keys_after"] = load_after[g]
            rows.append(row)
        out_results.append({
            "algo": algo, "moved_fraction": moved / keys, "ideal_moved_fraction": ideal,
            "max_over_mean": max(ratios), "min_over_mean": min(ratios),
            "stddev_over_mean": math.sqrt(var), "nodes": rows,
        })
    return {
        "nodes_before": count_before,
        "nodes_after": sum(in_after),
        "keys": keys,
        "scheme": scheme,
        "vnodes": vnodes,
        "seed": seed,
        "ideal_moved_fraction": ideal,
        "added": [_name_str(nm) for nm, _ in all_nodes[count_before:]],
        "removed": [_name_str(nm) for nm, _ in all_nodes[count_before - remove:count_before]],
        "results": out_results,
    }


def _simulate_run(rb: Ring, ra: Ring, index: Dict[bytes, int], total: int, keys: int,
                  seed: int) -> Tuple[int, List[int], List[int]]:
    sb, sa = rb._get(), ra._get()
    cb, ca = sb.c, sa.c
    gb = [index[_name_bytes(n)] for n in sb.names]
    ga = [index[_name_bytes(n)] for n in sa.names]
    load_before, load_after = [0] * total, [0] * total
    moved = 0
    nb, na = _size_t(), _size_t()
    pb, pa = ctypes.byref(nb), ctypes.byref(na)
    bounded = rb.algo == "bounded"
    loads_b, loads_a = _P(), _P()
    try:
        if bounded:
            _check(_lib.chash_loads_create(cb, ctypes.byref(loads_b)), "chash_loads_create")
            _check(_lib.chash_loads_create(ca, ctypes.byref(loads_a)), "chash_loads_create")
        key_hash, lookup_hash = _lib.chash_key_hash, _lib.chash_lookup_hash
        for i in range(keys):
            k = sample_key(seed, i)
            if bounded:
                _check(_lib.chash_lookup_bounded(cb, loads_b, k, len(k), pb), "chash_lookup_bounded")
                _check(_lib.chash_lookup_bounded(ca, loads_a, k, len(k), pa), "chash_lookup_bounded")
                _lib.chash_loads_acquire(loads_b, nb.value)
                _lib.chash_loads_acquire(loads_a, na.value)
            else:
                h = key_hash(cb, k, len(k))
                _check(lookup_hash(cb, h, pb), "chash_lookup_hash")
                _check(lookup_hash(ca, h, pa), "chash_lookup_hash")
            b, a = gb[nb.value], ga[na.value]
            load_before[b] += 1
            load_after[a] += 1
            moved += b != a
    finally:
        _lib.chash_loads_free(loads_b)
        _lib.chash_loads_free(loads_a)
    return moved, load_before, load_after
