# testlib.sh - sourced by the shell tests: a scratch directory removed on
# exit, pass/fail counters, and the summary that sets the exit status.
# The sourcing script sets NAME first.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
finish() {
    echo "$NAME: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
