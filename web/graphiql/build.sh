#!/usr/bin/env bash
# Rebuilds graphiql/assets/ (embedded into the berth binary by the Go package
# github.com/berthhq/berth/graphiql) from the npm packages pinned in
# package-lock.json next to this script. Needs node and npm; run from anywhere:
#
#     bash web/graphiql/build.sh
#
# graphiql 4.1.2 ships a ready browser build (UMD graphiql.min.js, expecting
# the React and ReactDOM globals, plus graphiql.min.css with its fonts inlined),
# and react/react-dom 18.2.0 ship UMD builds, so nothing is bundled here: the
# distribution files are copied as they are (minus their sourceMappingURL
# comment, since the source maps are not shipped), together with our own
# src/init.js and src/berth.css and the license texts of everything bundled.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(cd "$here/../.." && pwd)/graphiql/assets"

cd "$here"
npm ci --no-audit --no-fund --ignore-scripts

stage="$(mktemp -d "${TMPDIR:-/tmp}/berth-graphiql-assets.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

# copy SRC NAME: copy a distribution file, dropping sourceMappingURL comments.
copy() {
  sed -e '/^\/\/# sourceMappingURL=/d' -e 's|/\*# sourceMappingURL=[^*]*\*/||' "$1" >"$stage/$2"
}

copy node_modules/react/umd/react.production.min.js react.production.min.js
copy node_modules/react-dom/umd/react-dom.production.min.js react-dom.production.min.js
copy node_modules/graphiql/graphiql.min.js graphiql.min.js
copy node_modules/graphiql/graphiql.min.css graphiql.min.css
cp src/init.js src/berth.css "$stage/"

node collect-licenses.mjs "$stage/licenses"

mkdir -p "$(dirname "$out")"
rm -rf "$out"
cp -R "$stage" "$out"
chmod -R u+rwX,go+rX "$out"

echo "assets written to $out:"
for f in "$out"/*; do
  [ -f "$f" ] && printf '%9d  %s\n' "$(wc -c <"$f")" "$(basename "$f")"
done
printf '%9d  %s\n' "$(find "$out/licenses" -type f -exec cat {} + | wc -c)" "licenses/ ($(ls "$out/licenses" | wc -l | tr -d ' ') files)"
printf '%9d  total\n' "$(find "$out" -type f -exec cat {} + | wc -c)"
