#!/bin/sh
# install_check.sh BUILD_DIR SOURCE_DIR [CFLAGS] - install into a scratch prefix, then
# build the README example against it twice: with pkg-config (shared library)
# and with CMake's find_package(chash) (static library). Proves the installed
# header, libraries, chash.pc and chashConfig.cmake work for a user.
set -eu
build=$1
src=$2
user_flags=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc_dir=$(dirname "$(find "$tmp/prefix" -name chash.pc | head -n 1)")
libdir=$(dirname "$(find "$tmp/prefix" -name 'libchash.so' | head -n 1)")
test -f "$tmp/prefix/include/chash.h"
test -f "$libdir/libchash.a"
# The SONAME is the header's major version (the ABI promise in chash.h).
major=$(sed -n 's/^#define CHASH_VERSION_MAJOR \([0-9][0-9]*\)$/\1/p' "$tmp/prefix/include/chash.h")
test -n "$major"
test -e "$libdir/libchash.so.$major"
flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs chash)
cc -std=c11 -Wall -Werror $user_flags "$src/examples/basic.c" $flags -o "$tmp/basic_pc"
LD_LIBRARY_PATH="$libdir" "$tmp/basic_pc" | grep -q '^user:42 -> cache-[abc]$'
mkdir "$tmp/user"
cat >"$tmp/user/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(user C)
find_package(chash $major.0 REQUIRED)
add_executable(basic "$src/examples/basic.c")
target_link_libraries(basic PRIVATE chash::static)
CM
cmake -S "$tmp/user" -B "$tmp/user/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DCMAKE_C_FLAGS="$user_flags" -DCMAKE_EXE_LINKER_FLAGS="$user_flags" >/dev/null
cmake --build "$tmp/user/build" >/dev/null
"$tmp/user/build/basic" | grep -q '^add cache-d: success$'
echo "install_check: 2 passed, 0 failed"
