/*
 * error.c - the version, messages for error codes, and the names of
 * algorithms and schemes.
 *
 * chash_strerror() switches without a default so the compiler flags a code
 * that has no message.
 */
#include "internal.h"

unsigned chash_version(void) { return CHASH_VERSION_NUMBER; }

const char *chash_version_string(void) { return CHASH_VERSION_STRING; }

const char *chash_strerror(int err) {
    switch ((chash_error)err) {
    case CHASH_OK: return "success";
    case CHASH_EINVAL: return "invalid argument";
    case CHASH_ENOMEM: return "out of memory";
    case CHASH_EEMPTY: return "no nodes";
    case CHASH_EEXIST: return "a node of that name already exists";
    case CHASH_ENOENT: return "no such node";
    case CHASH_ENAME: return "node name is empty or too long";
    case CHASH_EWEIGHT: return "weight must be between 1 and 65535";
    case CHASH_ETOOBIG: return "too many nodes or points";
    case CHASH_ENOTSUP: return "not supported by this algorithm or scheme";
    case CHASH_EUNKNOWN: return "unknown algorithm or scheme name";
    case CHASH_ESIZE: return "config struct_size does not fit this library";
    }
    return "unknown error code";
}

static const char *const algo_names[CHASH_ALGO_END] = {
    [CHASH_ALGO_RING] = "ring",
    [CHASH_ALGO_MODULO] = "modulo",
    [CHASH_ALGO_JUMP] = "jump",
    [CHASH_ALGO_RENDEZVOUS] = "rendezvous",
    [CHASH_ALGO_MAGLEV] = "maglev",
    [CHASH_ALGO_MULTIPROBE] = "multiprobe",
    [CHASH_ALGO_BOUNDED] = "bounded",
    [CHASH_ALGO_MEMENTO] = "memento",
    [CHASH_ALGO_BUCKETS] = "buckets",
};

static const char *const bucket_by_names[CHASH_BUCKET_BY_END] = {
    [CHASH_BUCKET_BY_HASH] = "hash",
    [CHASH_BUCKET_BY_DIGITS] = "digits",
};

static const char *const scheme_names[CHASH_SCHEME_END] = {
    [CHASH_SCHEME_NATIVE] = "native",
    [CHASH_SCHEME_GROUPCACHE] = "groupcache",
    [CHASH_SCHEME_KETAMA] = "ketama",
    [CHASH_SCHEME_TWEMPROXY] = "twemproxy",
    [CHASH_SCHEME_NGINX] = "nginx",
    [CHASH_SCHEME_REDIS_CLUSTER] = "redis-cluster",
};

const char *chash_algo_name(chash_algo algo) {
    return (unsigned)algo < CHASH_ALGO_END ? algo_names[algo] : NULL;
}

const char *chash_scheme_name(chash_scheme scheme) {
    return (unsigned)scheme < CHASH_SCHEME_END ? scheme_names[scheme] : NULL;
}

int chash_algo_from_name(const char *name, chash_algo *out) {
    if (!name || !out) return CHASH_EINVAL;
    for (int i = 0; i < CHASH_ALGO_END; i++)
        if (strcmp(name, algo_names[i]) == 0) {
            *out = (chash_algo)i;
            return CHASH_OK;
        }
    return CHASH_EUNKNOWN;
}

int chash_scheme_from_name(const char *name, chash_scheme *out) {
    if (!name || !out) return CHASH_EINVAL;
    for (int i = 0; i < CHASH_SCHEME_END; i++)
        if (strcmp(name, scheme_names[i]) == 0) {
            *out = (chash_scheme)i;
            return CHASH_OK;
        }
    return CHASH_EUNKNOWN;
}

const char *chash_bucket_by_name(chash_bucket_by by) {
    return (unsigned)by < CHASH_BUCKET_BY_END ? bucket_by_names[by] : NULL;
}

int chash_bucket_by_from_name(const char *name, chash_bucket_by *out) {
    if (!name || !out) return CHASH_EINVAL;
    for (int i = 0; i < CHASH_BUCKET_BY_END; i++)
        if (strcmp(name, bucket_by_names[i]) == 0) {
            *out = (chash_bucket_by)i;
            return CHASH_OK;
        }
    return CHASH_EUNKNOWN;
}
