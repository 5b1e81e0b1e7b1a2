#!/bin/sh
# Runs every test suite: vitest (the sidecar, the TypeScript client, the cross-language and README tests),
# pytest (clients/python) and go test (clients/go). All three run even when one fails; a suite that could
# not run at all (no venv, no Go) counts as one failure. The last line is the total, exactly
# `N passed, M failed`, which CI reads; the exit status is non-zero when anything failed.
# Run scripts/bootstrap.sh first (npm test does).
set -u

cd "$(dirname "$0")/.."

# Go is often installed outside PATH; the vitest suites that build Go code look for it there too.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
	export PATH
fi

TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ESC=$(printf '\033')
plain() { sed "s/${ESC}\[[0-9;]*[A-Za-z]//g" "$1"; }
now() { date +%s; }
# count WORD TEXT: the number before WORD (an extended regex) in TEXT, else 0 ("3 passed" -> 3).
count() {
	_n=$(printf '%s\n' "$2" | grep -oE "[0-9]+ $1" | tail -n 1 | grep -oE '^[0-9]+')
	echo "${_n:-0}"
}

TOTAL_PASSED=0
TOTAL_FAILED=0
SUMMARY=
ANY_FAILED=

# record NAME PASSED FAILED EXIT_CODE SECONDS: a suite that exited non-zero with no failed test counted
# (a crash, a build error, a failed hook) still counts as one failure.
record() {
	_p=$2 _f=$3
	if [ "$4" -ne 0 ] && [ "$_f" -eq 0 ]; then _f=1; fi
	[ "$4" -eq 0 ] && [ "$_f" -eq 0 ] || ANY_FAILED=1
	TOTAL_PASSED=$((TOTAL_PASSED + _p))
	TOTAL_FAILED=$((TOTAL_FAILED + _f))
	SUMMARY="${SUMMARY}test: $1: $_p passed, $_f failed (exit $4, ${5}s)
"
}

# run NAME LOG COMMAND...: runs it with output shown and kept in LOG; sets $RC and $SECS.
run() {
	_name=$1 _log=$2
	shift 2
	printf '\ntest: ---- %s: %s\n' "$_name" "$*"
	_t0=$(now)
	{ "$@" 2>&1; echo $? >"$_log.rc"; } | tee "$_log"
	RC=$(cat "$_log.rc")
	SECS=$(($(now) - _t0))
}

# record_vitest NAME LOG: counts a vitest run from its closing lines ("Tests  2 failed | 868 passed (870)").
record_vitest() {
	_tests=$(plain "$2" | grep -E '^ *Tests +[0-9]' | tail -n 1)
	_files=$(plain "$2" | grep -E '^ *Test Files +[0-9]' | tail -n 1)
	_vf=$(count failed "$_tests")
	# A file that fails to load, or whose beforeAll throws, may fail no test by itself: count the file.
	_vff=$(count failed "$_files")
	[ "$_vf" -ge "$_vff" ] || _vf=$_vff
	record "$1" "$(count passed "$_tests")" "$_vf" "$RC" "$SECS"
}

# ---------------------------------------------------------------- vitest
run vitest "$TMPD/vitest" npx vitest run
record_vitest vitest "$TMPD/vitest"

# ---------------------------------------------------------------- nats-server floor
# The integration suites again against the oldest supported server (Debian's 2.9.10), when bootstrap could
# fetch it: the sidecar must keep working there, or refuse clearly what that server lacks.
FLOOR=$HOME/.cache/stufio-sidecar/nats-floor/nats-server
if [ -x "$FLOOR" ]; then
	run "vitest on nats-server $("$FLOOR" --version 2>/dev/null | sed 's/.*v//')" "$TMPD/floor" env STUFIO_NATS_SERVER_BIN="$FLOOR" npx vitest run \
		test/pipeline.test.ts test/faults.test.ts test/dead-letters.test.ts test/bad-input.test.ts test/delayed-delivery.test.ts test/metrics.test.ts
	record_vitest "vitest (nats-server floor)" "$TMPD/floor"
else
	printf '\ntest: ---- no Debian nats-server 2.9.10 in %s: compatibility run skipped\n' "$FLOOR"
fi

# ---------------------------------------------------------------- pytest
if [ -x .venv/bin/pytest ]; then
	run pytest "$TMPD/pytest" .venv/bin/pytest -q clients/python
	# "1 failed, 62 passed, 2 errors in 2.01s"
	last=$(plain "$TMPD/pytest" | grep -E '[0-9]+ (passed|failed|errors?)' | tail -n 1)
	record pytest "$(count passed "$last")" "$(($(count failed "$last") + $(count 'errors?' "$last")))" "$RC" "$SECS"
else
	printf '\ntest: ---- pytest: .venv/bin/pytest is missing: no Python 3.10+ venv (see the bootstrap output)\n'
	record pytest 0 1 1 0
fi

# ---------------------------------------------------------------- go test
if command -v go >/dev/null 2>&1; then
	# -v for the per-test lines, counted below. Shown: the package lines when everything passed, else
	# all of it but the RUN/PAUSE/CONT noise.
	printf '\ntest: ---- go test: (cd clients/go && go test -v ./...)\n'
	_t0=$(now)
	{ (cd clients/go && go test -v ./... 2>&1); echo $? >"$TMPD/go.rc"; } >"$TMPD/go"
	RC=$(cat "$TMPD/go.rc")
	SECS=$(($(now) - _t0))
	if [ "$RC" -eq 0 ]; then
		plain "$TMPD/go" | grep -E '^(ok|\?|FAIL)[[:space:]]'
	else
		plain "$TMPD/go" | grep -v -E '^=== (RUN|PAUSE|CONT|NAME)'
	fi
	# Top-level tests only: subtests are indented.
	gp=$(plain "$TMPD/go" | grep -c -E '^--- PASS: ')
	gf=$(plain "$TMPD/go" | grep -c -E '^--- FAIL: ')
	# A package that does not build runs no test.
	gb=$(plain "$TMPD/go" | grep -c -E '^FAIL[[:space:]].*\[(build|setup) failed\]')
	record "go test" "$gp" "$((gf + gb))" "$RC" "$SECS"
else
	printf '\ntest: ---- go test: no Go toolchain (not on PATH, no /usr/local/go/bin/go)\n'
	record "go test" 0 1 1 0
fi

printf '\n%s' "$SUMMARY"
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ -z "$ANY_FAILED" ]
