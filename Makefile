# Wrappers around CMake for the README's commands. `make check` is what CI runs.
# Debian 12 packages the build and the tests need (installed by `make deps`):
DEB_PACKAGES = build-essential cmake clang libclang-rt-14-dev pkg-config zlib1g-dev python3 \
               chromium python3-pil python3-redis \
               golang-go golang-github-golang-groupcache-dev \
               libmemcached-dev libssl-dev libyaml-dev libhiredis-dev \
               libcurl4-openssl-dev libjansson-dev liburing-dev \
               nutcracker redis-server redis-sentinel memcached nginx etcd-server etcd-client \
               openssl man-db
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build demo check test test-gcc test-clang test-asan test-tsan test-fuzz bench clean

all: build

deps:
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PACKAGES)

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build build -j$(JOBS)

# The README's demo: 10 nodes -> 11, modulo vs ring, 1,000,000 keys.
demo: deps build
	./build/chash simulate

# Every test, in every build CI promises: gcc and clang warning-free with
# -Werror, the whole suite under ASan+UBSan, the threads test under TSan, and
# each fuzzer for FUZZ_SECONDS (three of them, two at a time: about a minute).
check: deps test

test: test-gcc test-clang test-asan test-tsan test-fuzz

define run_suite
	cmake -S . -B $(1) -DCHASH_WERROR=ON $(2)
	cmake --build $(1) -j$(JOBS)
	cd $(1) && $(4) ctest --output-on-failure -j$(JOBS) $(3)
endef

test-gcc:
	$(call run_suite,build-gcc,-DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_INSTALL_PREFIX=/usr -DCHASH_TEST_PACKAGES=ON,)
# The proxy's tests run on both event loops: clang's on epoll, the others on
# the default (io_uring where the kernel has it).
test-clang:
	$(call run_suite,build-clang,-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo,,CHASH_PROXY_EVENT_LOOP=epoll)
test-asan:
	$(call run_suite,build-asan,-DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DCHASH_SANITIZE=ON,)
test-tsan:
	$(call run_suite,build-tsan,-DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHASH_TSAN=ON,-R "test_threads|proxy_(hostile|reload|stats|failure|held|sentinel|fleet|cluster|tls|event_loop)")
FUZZ_SECONDS ?= 30
test-fuzz:
	cmake -S . -B build-fuzz -DCHASH_WERROR=ON -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHASH_FUZZ=ON -DCHASH_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build build-fuzz -j$(JOBS) --target fuzz_resp fuzz_reply fuzz_memcache fuzz_config \
	  fuzz_etcd fuzz_fleet fuzz_slot_table fuzz_clustermap fuzz_acl fuzz_tls
	cd build-fuzz && ctest --output-on-failure -j$(JOBS) -L fuzz

bench: build
	bench/run.sh

clean:
	rm -rf build build-gcc build-clang build-asan build-tsan build-fuzz
