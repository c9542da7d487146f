#!/bin/sh
# tools/run-tests.sh BUILD - runs every test binary under BUILD/tests with TAP output, then the
# console's browser tests (tests/console/test_*.mjs, node + playwright-core + Debian's chromium,
# against BUILD's gslbd), and totals the results into one closing line, "N passed, N failed".
# Exits non-zero if anything failed, including a test that crashed or printed no result at all.
set -u

BUILD=${1:-build}
export GSLB_BUILD="$BUILD"
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in $(find "$BUILD/tests" -type f -name 'test_*' ! -name '*.[od]' | sort) \
    $(find tests/console -type f -name 'test_*.mjs' 2>/dev/null | sort); do
    echo "== $t"
    case "$t" in
    *.mjs) timeout 180 node "$t" >"$log" 2>&1 ;;
    *) CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$log" 2>&1 ;;
    esac
    rc=$?
    cat "$log"
    ok=$(grep -c '^ok ' "$log")
    bad=$(grep -c '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        echo "!! $t exited with status $rc"
        bad=1
    fi
    if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
        echo "!! $t ran no test"
        bad=1
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
