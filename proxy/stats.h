/*
 * stats.h - every statistic the proxy keeps, listed once.
 *
 * The lists below are the only place a statistic is named. From them come
 * the counters in pool_stats and server_stats, the nutcracker-compatible
 * JSON document, the Prometheus families of /metrics, `chash-proxy -D`, and
 * what a reload carries over to the pool that replaces the old one.
 *
 * Each row: X(field, how, carry, json, metric, type, text)
 *   how     SUM: summed over the workers; MAX: the largest value
 *   carry   1: a reload's new pool goes on from the old pool's value;
 *           0: a gauge that stays with the connections it counts
 *   json    1: a field of the JSON document (nutcracker's, in its order)
 *   metric  the Prometheus name, or NULL when not exported
 *   type    counter or gauge (Prometheus)
 *   text    one line: what it counts (-D and the metric's HELP)
 */
#ifndef PROXY_STATS_H
#define PROXY_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define POOL_STATS(X)                                                                          \
    X(client_eof, SUM, 1, 1, "chash_proxy_client_eof_total", counter,                         \
      "Clients that closed their connection.")                                                \
    X(client_err, SUM, 1, 1, "chash_proxy_client_errors_total", counter,                      \
      "Clients closed or refused for a protocol error or a limit.")                           \
    X(client_connections, SUM, 1, 1, "chash_proxy_client_connections", gauge,                 \
      "Open client connections.")                                                             \
    X(held_connections, SUM, 0, 1, "chash_proxy_held_connections", gauge,                     \
      "Server connections a client holds alone (transactions, blocking, pub/sub).")           \
    X(server_ejects, SUM, 1, 1, "chash_proxy_server_ejects_total", counter,                   \
      "Times a server was ejected from the ring or marked down.")                             \
    X(forward_error, SUM, 1, 1, "chash_proxy_forward_errors_total", counter,                  \
      "Requests (or parts) answered with an error for a server's fault.")                     \
    X(fragments, SUM, 1, 1, "chash_proxy_fragments_total", counter,                           \
      "Server requests made by splitting multi-key requests.")                                \
    X(warmup_moved, SUM, 1, 1, "chash_proxy_warmup_moved_total", counter,                     \
      "Keys moved from their previous owner during a warm-up window.")                        \
    X(warmup_absent, SUM, 1, 1, "chash_proxy_warmup_absent_total", counter,                   \
      "Warm-up moves that found no key on the previous owner.")                               \
    X(warmup_stale, SUM, 1, 1, "chash_proxy_warmup_stale_total", counter,                     \
      "Previous owners' copies deleted because the new owner had a newer one.")               \
    X(warmup_failed, SUM, 1, 1, "chash_proxy_warmup_failed_total", counter,                   \
      "Warm-up moves that failed (the key then misses).")                                     \
    X(cluster_moved, SUM, 1, 1, "chash_proxy_cluster_moved_total", counter,                   \
      "redis-cluster: requests a node answered -MOVED, sent on to the slot's owner.")         \
    X(cluster_ask, SUM, 1, 1, "chash_proxy_cluster_ask_total", counter,                       \
      "redis-cluster: requests a node answered -ASK, sent on with ASKING.")                   \
    X(cluster_retried, SUM, 1, 1, "chash_proxy_cluster_retried_total", counter,               \
      "redis-cluster: requests answered -TRYAGAIN or -CLUSTERDOWN, sent again later.")        \
    X(cluster_redirect_failed, SUM, 1, 1, "chash_proxy_cluster_redirect_failed_total",        \
      counter, "redis-cluster: redirected requests that found no owner in time.")             \
    X(auth_failed, SUM, 1, 1, "chash_proxy_auth_failed_total", counter,                       \
      "AUTH and HELLO ... AUTH refused: a wrong user name or password.")                     \
    X(client_memory_shed, SUM, 1, 1, "chash_proxy_client_memory_shed_total", counter,         \
      "Clients closed because the process was over --max-memory and they held the most.")   \
    X(tls_handshakes, SUM, 1, 1, "chash_proxy_tls_handshakes_total", counter,                 \
      "TLS clients whose handshake completed.")                                               \
    X(tls_handshake_errors, SUM, 1, 1, "chash_proxy_tls_handshake_errors_total", counter,     \
      "TLS clients closed before their handshake completed: failed, too slow, plaintext "     \
      "or past tls_max_handshakes.")                                                          \
    X(requests, SUM, 1, 0, "chash_proxy_requests_total", counter, "Requests received.")       \
    X(errors_local, SUM, 1, 0, "chash_proxy_local_errors_total", counter,                     \
      "Requests answered with an error by the proxy itself.")

#define SERVER_STATS(X)                                                                        \
    X(server_eof, SUM, 1, 1, "chash_proxy_server_eof_total", counter,                         \
      "Times the server closed a connection.")                                                \
    X(server_err, SUM, 1, 1, "chash_proxy_server_errors_total", counter,                      \
      "Connection errors with the server.")                                                   \
    X(server_timedout, SUM, 1, 1, "chash_proxy_server_timeouts_total", counter,               \
      "Requests that timed out waiting for the server.")                                      \
    X(server_connections, SUM, 0, 1, "chash_proxy_server_connections", gauge,                 \
      "Open connections to the server.")                                                      \
    X(server_ejected_at, MAX, 1, 1, NULL, gauge,                                              \
      "The last ejection (monotonic microseconds).")                                          \
    X(requests, SUM, 1, 1, "chash_proxy_server_requests_total", counter,                      \
      "Requests sent to the server.")                                                         \
    X(request_bytes, SUM, 1, 1, "chash_proxy_server_request_bytes_total", counter,            \
      "Bytes sent to the server.")                                                            \
    X(responses, SUM, 1, 1, "chash_proxy_server_responses_total", counter,                    \
      "Replies received from the server.")                                                    \
    X(response_bytes, SUM, 1, 1, "chash_proxy_server_response_bytes_total", counter,          \
      "Bytes received from the server.")                                                      \
    X(in_queue, SUM, 0, 1, NULL, gauge,                                                       \
      "Requests waiting to be sent (always 0: each is sent on the turn it arrives).")         \
    X(in_queue_bytes, SUM, 0, 1, "chash_proxy_server_in_queue_bytes", gauge,                  \
      "Bytes waiting to be written to the server.")                                           \
    X(out_queue, SUM, 0, 1, "chash_proxy_server_out_queue", gauge,                            \
      "Requests sent and waiting for the server's reply.")                                    \
    X(out_queue_bytes, SUM, 0, 1, NULL, gauge, "Not tracked (always 0).")                     \
    X(reads_primary, SUM, 1, 1, "chash_proxy_shard_reads_primary_total", counter,             \
      "Reads (read-only commands) sent to the shard's primary (pools with replicas).")        \
    X(reads_replica, SUM, 1, 1, "chash_proxy_shard_reads_replica_total", counter,             \
      "Reads sent to one of the shard's replicas (read_from).")                               \
    X(reads_retried, SUM, 1, 1, "chash_proxy_shard_reads_retried_total", counter,             \
      "Reads a replica failed, sent again to the primary (prefer_replica).")                  \
    X(reads_refused, SUM, 1, 1, "chash_proxy_shard_reads_refused_total", counter,             \
      "Reads refused: read_from: replica and no replica usable.")                             \
    X(write_ack_failed, SUM, 1, 1, "chash_proxy_shard_write_ack_failed_total", counter,       \
      "Writes answered -NOREPLICAS: fewer than min_replicas_ack replicas had them in time.")  \
    X(failover_waited, SUM, 1, 1, "chash_proxy_shard_failover_waits_total", counter,          \
      "Requests that waited for the shard's new primary (failover_wait).")                    \
    X(failover_wait_expired, SUM, 1, 1, "chash_proxy_shard_failover_wait_expired_total",      \
      counter, "Requests that waited failover_wait and got an error.")

/* Statistics: written by one worker, read by the stats thread. */
typedef _Atomic uint64_t stat_t;
static inline void stat_add(stat_t *s, uint64_t n) {
    atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline void stat_sub(stat_t *s, uint64_t n) {
    atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) - n,
                          memory_order_relaxed);
}
static inline uint64_t stat_get(const stat_t *s) {
    return atomic_load_explicit(s, memory_order_relaxed);
}

#define STATS_FIELD(field, how, carry, json, metric, type, text) stat_t field;
typedef struct pool_stats {
    POOL_STATS(STATS_FIELD)
} pool_stats;

/* Reply latency buckets, upper bounds in microseconds (and +Inf). */
#define LATENCY_BUCKETS 14
extern const uint64_t latency_bucket_us[LATENCY_BUCKETS - 1];

typedef struct server_stats {
    SERVER_STATS(STATS_FIELD)
    stat_t latency_count[LATENCY_BUCKETS]; /* not cumulative; stats.c sums */
    stat_t latency_sum_us;
} server_stats;
#undef STATS_FIELD

/* Counts one reply that took `us` microseconds. */
void stats_latency(server_stats *st, uint64_t us);
/* A reloaded pool's (or server's) statistics go on from the old one's:
 * adds every carried field of `from` to `to`. */
void stats_carry_pool(pool_stats *to, const pool_stats *from);
void stats_carry_server(server_stats *to, const server_stats *from);
/* What every statistic means (`chash-proxy -D`). */
void stats_describe(FILE *out);

#endif
