#!/bin/sh
# Fails when the committed generated code differs from what `npm run gen` makes from proto/.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx buf lint
npx buf generate -o "$tmp"
status=0
for dir in src/gen clients/ts/src/gen; do
  if ! diff -r "$tmp/$dir" "$dir" >/dev/null; then
    echo "generated code in $dir is out of sync with proto/: run npm run gen and commit" >&2
    diff -r "$tmp/$dir" "$dir" | head -20 >&2
    status=1
  fi
done
exit $status
