#!/bin/sh
# Bring a checkout to the point where `npm test` / `npm run demo` can run:
# node deps, a nats-server binary, and an up-to-date dist/. Runs before every
# test and demo, so the "already done" path must stay cheap (no npm, no tsc).
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
