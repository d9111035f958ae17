# testlib.sh - sourced by the shell tests: a scratch directory removed on
# exit, pass/fail/skip counters, and the summary that sets the exit status.
# The sourcing script sets NAME first.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
passed=0
failed=0
skipped=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
# A check this machine cannot run (a missing device or tool): said, counted,
# and the test exits 77, which ctest shows as skipped rather than passed.
skip() { skipped=$((skipped + 1)); echo "SKIP: $*" >&2; }
finish() {
    echo "$NAME: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ] || return 1
    [ "$skipped" -eq 0 ] || return 77
}
