#!/bin/sh
# Bring a checkout to the point where `npm test` / `npm run demo` can run:
# node deps, a nats-server binary, an up-to-date dist/, a Python venv (.venv) with
# clients/python installed, and the Go example binaries (.tools/bin). Runs before
# every test and demo, so the "already done" path must stay cheap (no npm, no tsc,
# no pip, no go build).
set -eu

NATS_VERSION=2.15.3
# Debian bookworm ships 2.9.10; anything older lacks features the tests rely on.
NATS_FLOOR=2.9.10
NATS_MODULE=github.com/nats-io/nats-server/v2
: "${HOME:=$(cd ~ && pwd)}"
CACHE_BIN="$HOME/.cache/stufio-sidecar/bin"

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

cd "$(dirname "$0")/.."

TMPD=
cleanup() { [ -z "$TMPD" ] || rm -rf "$TMPD"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Sets $_t to a new empty file (its mtime is "now", which the build step relies on).
tmpfile() {
	[ -n "$TMPD" ] || TMPD=$(mktemp -d)
	_tn=$((${_tn:-0} + 1))
	_t="$TMPD/$_tn"
	: >"$_t"
}

# Run a noisy tool with its output held back: one summary line on success,
# the tail of its output on failure (npm/go/apt output is long and mostly noise).
quiet() {
	tmpfile
	_log=$_t
	if "$@" >"$_log" 2>&1; then
		return 0
	else
		_rc=$?
		tail -n 40 "$_log" | sed 's/^/bootstrap: | /' >&2
		return "$_rc"
	fi
}

# find(1) rather than `test -nt`: -nt is not in older POSIX shells.
newer() { [ -e "$2" ] && [ -n "$(find "$1" -prune -newer "$2" 2>/dev/null)" ]; }

now() { date +%s; }

# ---------------------------------------------------------------- node deps
# node_modules/.package-lock.json is rewritten by every npm install/ci, after
# package-lock.json; the node_modules directory's own mtime is not (it is older
# than the lock right after an install), so it is the only reliable stamp.
DEPS_CHANGED=
npm_cmd=
if [ -f package-lock.json ]; then
	if [ ! -f node_modules/.package-lock.json ] || newer package-lock.json node_modules/.package-lock.json; then
		npm_cmd=ci
	fi
elif [ ! -f node_modules/.package-lock.json ] || newer package.json node_modules/.package-lock.json; then
	npm_cmd=install
fi
if [ -n "$npm_cmd" ]; then
	say "npm $npm_cmd ..."
	t0=$(now)
	quiet npm "$npm_cmd" --no-audit --no-fund || die "npm $npm_cmd failed"
	say "npm $npm_cmd done in $(($(now) - t0))s"
	DEPS_CHANGED=1
else
	say "node_modules up to date"
fi

# ---------------------------------------------------------------- nats-server
nats_version() {
	"$1" --version 2>&1 | sed -n 's/.*v\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1
}

version_ge() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		split(a, x, "."); split(b, y, ".")
		for (i = 1; i <= 3; i++) { if (x[i] + 0 > y[i] + 0) exit 0; if (x[i] + 0 < y[i] + 0) exit 1 }
		exit 0 }'
}

# Accept a candidate only if it runs and is not below the floor, so a stale
# binary somewhere on the machine does not shadow a good one.
NATS_REASON=
try_nats() {
	[ -n "$1" ] && [ -f "$1" ] && [ -x "$1" ] || return 1
	NATS_REASON=
	_v=$(nats_version "$1")
	if [ -z "$_v" ]; then
		NATS_REASON="$1: --version failed"
	elif ! version_ge "$_v" "$NATS_FLOOR"; then
		NATS_REASON="$1: v$_v is older than v$NATS_FLOOR"
	fi
	if [ -n "$NATS_REASON" ]; then
		say "ignoring $NATS_REASON"
		return 1
	fi
	say "nats-server v$_v ($2: $1)"
}

find_go() {
	if command -v go >/dev/null 2>&1; then command -v go
	elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
	else return 1
	fi
}

# The same order src/local-nats.ts searches, so whatever is accepted here is
# what the tests and the demo will launch.
ensure_nats() {
	if [ -n "${STUFIO_NATS_SERVER_BIN:-}" ]; then
		_b=$(command -v "$STUFIO_NATS_SERVER_BIN" 2>/dev/null || true)
		try_nats "$_b" "STUFIO_NATS_SERVER_BIN" && return 0
		# An explicit choice that does not work is an error, not a hint to look elsewhere.
		die "STUFIO_NATS_SERVER_BIN=$STUFIO_NATS_SERVER_BIN is not a usable nats-server${NATS_REASON:+ ($NATS_REASON)}"
	fi
	try_nats "$(command -v nats-server 2>/dev/null || true)" "on PATH" && return 0
	try_nats "$CACHE_BIN/nats-server" "cached" && return 0
	# Where a plain `go install` (the hint in src/local-nats.ts) puts it.
	try_nats "$HOME/go/bin/nats-server" "go bin" && return 0
	# Debian's package installs to /usr/sbin, which is not on a normal user's PATH.
	try_nats /usr/sbin/nats-server "apt package" && return 0

	if _go=$(find_go); then
		say "installing nats-server v$NATS_VERSION with go install (into $CACHE_BIN) ..."
		t0=$(now)
		mkdir -p "$CACHE_BIN"
		# pkg@version installs ignore any go.mod in the working directory, so
		# the pin above is the whole story.
		quiet env GOBIN="$CACHE_BIN" "$_go" install "$NATS_MODULE@v$NATS_VERSION" ||
			die "go install $NATS_MODULE@v$NATS_VERSION failed"
		try_nats "$CACHE_BIN/nats-server" "installed in $(($(now) - t0))s" && return 0
		die "go install finished but $CACHE_BIN/nats-server is not usable${NATS_REASON:+ ($NATS_REASON)}"
	fi

	if command -v apt-get >/dev/null 2>&1; then
		_sudo=
		if [ "$(id -u)" != 0 ]; then
			# Without a terminal a password prompt would hang CI, so only use
			# sudo there if it needs no password.
			if command -v sudo >/dev/null 2>&1 && { [ -t 0 ] || sudo -n true 2>/dev/null; }; then
				_sudo=sudo
			else
				_sudo=none
			fi
		fi
		if [ "$_sudo" != none ]; then
			say "installing nats-server with apt-get ..."
			t0=$(now)
			quiet $_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
			quiet $_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server ||
				die "apt-get install nats-server failed"
			try_nats /usr/sbin/nats-server "apt-get installed in $(($(now) - t0))s" && return 0
			try_nats "$(command -v nats-server 2>/dev/null || true)" "apt-get installed in $(($(now) - t0))s" && return 0
			die "apt-get installed nats-server but no usable nats-server is on PATH${NATS_REASON:+ ($NATS_REASON)}"
		fi
	fi

	die "nats-server v$NATS_FLOOR+ not found${NATS_REASON:+ ($NATS_REASON)}: install Go and re-run 'npm run bootstrap', or run 'go install $NATS_MODULE@v$NATS_VERSION' or 'apt-get install nats-server', or set STUFIO_NATS_SERVER_BIN"
}
ensure_nats

# ---------------------------------------------------------------- build
STAMP=dist/.build-stamp
build_reason=
if [ ! -f "$STAMP" ]; then
	build_reason="no $STAMP"
elif [ ! -d clients/ts/dist ]; then
	build_reason="clients/ts/dist missing"
elif [ -n "$DEPS_CHANGED" ]; then
	build_reason="dependencies reinstalled"
else
	set --
	for p in src examples bench clients/ts/src tsconfig*.json clients/ts/tsconfig*.json; do
		[ -e "$p" ] && set -- "$@" "$p"
	done
	if [ "$#" -gt 0 ]; then
		_changed=$(find "$@" -type f -newer "$STAMP" 2>/dev/null | head -n 1)
		if [ -n "$_changed" ]; then
			build_reason="$_changed changed"
		else
			# A deleted or renamed source file only shows as a newer directory.
			_changed=$(find "$@" -type d -newer "$STAMP" 2>/dev/null | head -n 1)
			[ -z "$_changed" ] || build_reason="files added or removed in $_changed"
		fi
	fi
fi

if [ -n "$build_reason" ]; then
	say "building ($build_reason) ..."
	# Stamp with the time the build *started*: a file saved while tsc runs
	# must still look newer than the stamp next time.
	tmpfile
	_start=$_t
	t0=$(now)
	tmpfile
	_log=$_t
	if npm run --silent build >"$_log" 2>&1; then
		touch -r "$_start" "$STAMP"
		say "built in $(($(now) - t0))s"
	else
		_rc=$?
		_n=$(wc -l <"$_log" | tr -d ' ')
		head -n 60 "$_log" | sed 's/^/bootstrap: | /' >&2
		[ "$_n" -le 60 ] || say "| ... ($_n lines in all; run 'npm run build' to see them)" >&2
		die "npm run build failed (exit $_rc)"
	fi
else
	say "dist up to date"
fi

# ---------------------------------------------------------------- client toolchains
# The Python and Go clients' tests and the cross-language tests need a venv with clients/python installed
# and the Go example binaries. Neither is fatal here: a missing toolchain is named, loudly, and the tests
# that need it fail in scripts/test.sh (which counts them), rather than being skipped in silence.
warn() { printf 'bootstrap: WARNING: %s\n' "$*" >&2; }

PY_FLOOR=3.10.0
VENV=.venv
VENV_STAMP=$VENV/.stufio-bootstrap

py_version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }

# The first python3 (then python3.N) on PATH that is at least $PY_FLOOR; sets $PY and $PY_V.
PY= PY_V= PY_SEEN=
find_python() {
	for _c in python3 python3.14 python3.13 python3.12 python3.11 python3.10; do
		_p=$(command -v "$_c" 2>/dev/null) || continue
		_v=$(py_version "$_p") || continue
		[ -n "$_v" ] || continue
		if version_ge "$_v" "$PY_FLOOR"; then
			PY=$_p PY_V=$_v
			return 0
		fi
		PY_SEEN="${PY_SEEN:+$PY_SEEN, }$_p is $_v"
	done
	return 1
}

ensure_venv() {
	# Up to date: a venv whose Python still runs and is new enough, installed after the last change to
	# the package's metadata (the install is editable, so source changes need nothing).
	if [ -f "$VENV_STAMP" ] && [ -x "$VENV/bin/pytest" ] && ! newer clients/python/pyproject.toml "$VENV_STAMP"; then
		_v=$(py_version "$VENV/bin/python") || _v=
		if [ -n "$_v" ] && version_ge "$_v" "$PY_FLOOR"; then
			say "$VENV up to date (Python $_v)"
			return 0
		fi
	fi
	if ! find_python; then
		warn "no Python $PY_FLOOR+ found (${PY_SEEN:-no python3 on PATH}): the Python client tests and the Python cross-language and README tests WILL FAIL; install Python 3.10+ (with venv) and re-run 'npm run bootstrap'"
		return 0
	fi
	say "creating $VENV with Python $PY_V ($PY) and pip install -e 'clients/python[dev]' ..."
	t0=$(now)
	rm -rf "$VENV"
	if ! quiet "$PY" -m venv "$VENV"; then
		warn "'$PY -m venv $VENV' failed (on Debian/Ubuntu: apt-get install python3-venv): the Python tests WILL FAIL"
		rm -rf "$VENV"
		return 0
	fi
	if ! quiet "$VENV/bin/python" -m pip install --disable-pip-version-check -e 'clients/python[dev]'; then
		warn "pip install -e 'clients/python[dev]' failed (output above): the Python tests WILL FAIL"
		return 0
	fi
	date >"$VENV_STAMP"
	say "$VENV ready in $(($(now) - t0))s (Python $PY_V)"
}
ensure_venv

# Go binaries the cross-language tests run: name and package (relative to clients/go).
GO_BINARIES="go-order-handler:./examples/order-handler go-publish-event:./examples/publish-event"
GO_BIN_DIR=.tools/bin

ensure_go_binaries() {
	if ! _go=$(find_go); then
		warn "no Go toolchain found (not on PATH, no /usr/local/go/bin/go): the Go client tests and the Go cross-language and README tests WILL FAIL; install Go (see clients/go/README.md for the version) and re-run 'npm run bootstrap'"
		return 0
	fi
	_stale=
	for _b in $GO_BINARIES; do
		_bin=$GO_BIN_DIR/${_b%%:*}
		if [ ! -x "$_bin" ] || [ -n "$(find clients/go \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$_bin" 2>/dev/null | head -n 1)" ]; then
			_stale="$_stale $_b"
		fi
	done
	if [ -z "$_stale" ]; then
		say "Go binaries up to date ($GO_BIN_DIR)"
		return 0
	fi
	mkdir -p "$GO_BIN_DIR"
	_out=$(cd "$GO_BIN_DIR" && pwd)
	t0=$(now)
	for _b in $_stale; do
		if ! quiet "$_go" -C clients/go build -o "$_out/${_b%%:*}" "${_b#*:}"; then
			warn "go build ${_b#*:} failed (output above): the Go cross-language tests WILL FAIL"
			return 0
		fi
	done
	say "built Go binaries$(for _b in $_stale; do printf " %s" "${_b%%:*}"; done) in $(($(now) - t0))s ($("$_go" env GOVERSION))"
}
ensure_go_binaries

# The oldest supported server, for the compatibility suite in scripts/test.sh: Debian's nats-server 2.9.10
# package, downloaded and unpacked (not installed) into the cache. Optional: without apt it is skipped.
FLOOR_DIR=$HOME/.cache/stufio-sidecar/nats-floor
ensure_floor_nats() {
	if [ -x "$FLOOR_DIR/nats-server" ]; then
		say "compatibility nats-server $(nats_version "$FLOOR_DIR/nats-server") ready ($FLOOR_DIR)"
		return 0
	fi
	if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
		say "no apt-get: the compatibility run against Debian's nats-server 2.9.10 is skipped"
		return 0
	fi
	t0=$(now)
	_d=$(mktemp -d)
	if ! (cd "$_d" && quiet apt-get download nats-server) && ! { quiet apt-get update -q && (cd "$_d" && quiet apt-get download nats-server); }; then
		rm -rf "$_d"
		say "apt-get download nats-server failed: the compatibility run is skipped"
		return 0
	fi
	mkdir -p "$FLOOR_DIR"
	dpkg-deb -x "$_d"/nats-server_*.deb "$_d/x" && cp "$_d/x/usr/sbin/nats-server" "$FLOOR_DIR/nats-server"
	rm -rf "$_d"
	say "compatibility nats-server $(nats_version "$FLOOR_DIR/nats-server") unpacked in $(($(now) - t0))s"
}
ensure_floor_nats
