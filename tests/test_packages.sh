#!/usr/bin/env bash
# test_packages.sh BUILD_DIR - the Debian packages (packaging/), end to end on
# this machine, as an operator would: cpack builds them, dpkg -i installs
# all four, `chash simulate` runs, the packaged chash-proxy starts from its
# packaged configuration as its own user (the unit's ExecStartPre and
# ExecStart, without systemd) and serves a redis-server on 127.0.0.1:6379,
# listening on 127.0.0.1 only; dpkg -P removes everything it put there.
# It installs into the system: root only (else skipped, exit 77), and the
# build must have been configured with -DCMAKE_INSTALL_PREFIX=/usr.
set -euo pipefail
build=$(cd "$1" && pwd)
if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null; then
    echo "skipped: needs root and dpkg (it installs packages)"
    exit 77
fi
fail() { echo "FAIL: $*"; exit 1; }
work=$(mktemp -d /tmp/chash-packages.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    dpkg -P chash-proxy chash libchash-dev libchash1 >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
grep -q '^CMAKE_INSTALL_PREFIX:PATH=/usr$' "$build/CMakeCache.txt" ||
    fail "configure the build with -DCMAKE_INSTALL_PREFIX=/usr to package it"
dpkg -P chash-proxy chash libchash-dev libchash1 >/dev/null 2>&1 || true

(cd "$build" && cpack -G DEB -B "$work/debs" >"$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log"; fail "cpack"; }
debs=("$work"/debs/*.deb)
echo "packages: ${debs[*]##*/}"
[ "${#debs[@]}" = 4 ] || fail "4 packages, got ${#debs[@]}"
for d in "${debs[@]}"; do
    dpkg-deb -I "$d" | sed -n 's/^ \(Package\|Depends\): /  &/p'
done
dpkg -i "${debs[@]}" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
for p in libchash1 libchash-dev chash chash-proxy; do
    dpkg -s "$p" | grep -q '^Status: install ok installed' || fail "$p is not installed"
done
echo "ok installed"

# The CLI and the library as installed.
/usr/bin/chash simulate --keys 20000 >"$work/sim.out" || fail "chash simulate"
grep -q ring "$work/sim.out" || fail "chash simulate printed no ring row"
pkg-config --exists chash || fail "pkg-config chash"
[ -f /usr/include/chash.h ] && [ -e "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/libchash.so.1" ] ||
    ls /usr/lib/*/libchash.so.1 /usr/lib/libchash.so.1 2>/dev/null | grep -q . || fail "libchash.so.1"
man -w chash chash-proxy libchash >/dev/null || fail "the manual pages are installed"
echo "ok chash simulate, pkg-config, man pages"

# The proxy as its unit runs it.
unit=$(dpkg -L chash-proxy | grep 'chash-proxy.service$') || fail "no unit file"
grep -q '^NoNewPrivileges=yes' "$unit" && grep -q '^ProtectSystem=strict' "$unit" &&
    grep -q '^PrivateTmp=yes' "$unit" && grep -q '^User=chash-proxy' "$unit" &&
    grep -q '^ExecStartPre=.* -t ' "$unit" || fail "the unit's hardening and -t"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || true
    ! grep -i "chash-proxy.service:" "$work/verify.log" | grep -vi "mount\|no such" ||
        { cat "$work/verify.log"; fail "systemd-analyze verify"; }
fi
getent passwd chash-proxy >/dev/null || fail "no chash-proxy user"
conf=/etc/chash-proxy/chash-proxy.yml
[ -f "$conf" ] || fail "no $conf"
[ "$(stat -c %U:%G:%a "$conf")" = root:chash-proxy:640 ] || fail "$conf: $(stat -c %U:%G:%a "$conf")"
# Under systemd, postinst has started the service: this test runs the
# unit's commands itself, on the same ports.
if [ -d /run/systemd/system ]; then
    systemctl is-active chash-proxy.service || true
    systemctl stop chash-proxy.service || true
fi
pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
setpriv --reuid=chash-proxy --regid=chash-proxy --init-groups -- $pre || fail "ExecStartPre: $pre"
redis_port_free=1
(exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && redis_port_free=0
if [ "$redis_port_free" = 1 ]; then
    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
        >"$work/redis.log" 2>&1 &
    pids+=($!)
fi
setpriv --reuid=chash-proxy --regid=chash-proxy --init-groups -- $start >"$work/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/22121) 2>/dev/null && break
    sleep 0.1
done
got=$(redis-cli -p 22121 SET packaged yes 2>&1)
[ "$got" = OK ] || { cat "$work/proxy.log"; fail "SET through the packaged proxy: $got"; }
[ "$(redis-cli -p 22121 GET packaged)" = yes ] || fail "GET through the packaged proxy"
# Its listeners: 127.0.0.1 only (the pool's and the stats').
listen=$(awk 'NR > 1 && $4 == "0A" {print $2}' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
         grep -i ":$(printf %04X 22121)\$\|:$(printf %04X 22222)\$" || true)
[ -n "$listen" ] || fail "the proxy's listeners not found"
echo "$listen" | grep -qv '^0100007F:' && fail "a listener not on 127.0.0.1: $listen"
owner=$(ps -o user= -p "${pids[-1]}" | tr -d ' ')
[ "$owner" = chash-proxy ] || fail "the proxy runs as $owner"
echo "ok the packaged proxy: -t, serves, 127.0.0.1 only, user $owner"
kill "${pids[-1]}"
wait "${pids[-1]}" || true
unset 'pids[-1]'

dpkg -P chash-proxy chash libchash-dev libchash1 >"$work/purge.log" 2>&1 ||
    { cat "$work/purge.log"; fail "dpkg -P"; }
for f in /usr/bin/chash /usr/bin/chash-proxy /usr/include/chash.h "$conf" "$unit"; do
    [ ! -e "$f" ] || fail "$f left after purge"
done
getent passwd chash-proxy >/dev/null && fail "the chash-proxy user left after purge"
echo "ok purged: nothing left"
