#!/usr/bin/env bash
# Runs the public HTTP caching test suite (github.com/http-tests/cache-tests) through this
# proxy: the suite's origin server and the proxy (PM2, default configuration, 2 workers, a
# fresh SQLite store, under a private PM2_HOME) on loopback, then the suite's CLI client in
# path-prefix form (http://127.0.0.1:PROXY/127.0.0.1:ORIGIN). Prints the required and
# optional counts and what did not pass (scripts/conformance-summary.mjs).
#
#   scripts/conformance.sh <suite checkout> [runs]
#
# The suite is never part of this repository: clone it anywhere. Its client needs undici
# (only for the interim-response tests); when <suite>/node_modules/undici is missing this
# links the proxy's own copy there. Environment: WORKERS (default 2), OUT (a directory
# that keeps each run's results-N.json and summary-N.txt; default a temp dir, removed).
# Everything started here is stopped on exit, by its pid or its private PM2 daemon.
set -euo pipefail

SUITE=${1:?usage: scripts/conformance.sh <cache-tests checkout> [runs]}
RUNS=${2:-1}
SUITE=$(cd "$SUITE" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ -f "$SUITE/test-engine/cli.mjs" && -f "$SUITE/tests/index.mjs" ]] || { echo "conformance: $SUITE is not a cache-tests checkout" >&2; exit 2; }
[[ -d "$ROOT/node_modules/pm2" ]] || { echo "conformance: run npm install in $ROOT first" >&2; exit 2; }

if [[ ! -e "$SUITE/node_modules/undici" ]]; then
  mkdir -p "$SUITE/node_modules"
  ln -s "$ROOT/node_modules/undici" "$SUITE/node_modules/undici"
  echo "conformance: linked $ROOT/node_modules/undici into $SUITE/node_modules" >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpx-conformance-XXXXXX")
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
SERVER_PID=''
export PM2_HOME="$WORK/pm2" PM2_DISABLE_VERSION_CHECK=1
PM2="$ROOT/node_modules/.bin/pm2"

cleanup () {
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true
  if [[ -f "$PM2_HOME/pm2.pid" ]]; then
    "$PM2" kill >/dev/null 2>&1 || true
    [[ -f "$PM2_HOME/pm2.pid" ]] && kill -9 "$(cat "$PM2_HOME/pm2.pid")" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port () { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
wait_for () { # url, seconds
  for _ in $(seq 1 $(($2 * 10))); do
    curl -s -o /dev/null -m 2 "$1" && return 0
    sleep 0.1
  done
  echo "conformance: nothing answers on $1" >&2
  return 1
}

ORIGIN_PORT=$(free_port)
PROXY_PORT=$(free_port)

(cd "$SUITE" && exec env npm_package_config_protocol=http npm_package_config_port="$ORIGIN_PORT" \
  npm_config_pidfile="$WORK/server.pid" node test-engine/server/server.mjs >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
wait_for "http://127.0.0.1:$ORIGIN_PORT/" 20

(cd "$ROOT" && npm run --silent build)
for run in $(seq 1 "$RUNS"); do
  # A fresh store and PM2 app for each run: results do not depend on an earlier run's entries.
  [[ -f "$PM2_HOME/pm2.pid" ]] && { "$PM2" kill >/dev/null 2>&1 || true; }
  rm -f "$WORK/cache.sqlite"*
  (cd "$ROOT" && env PORT="$PROXY_PORT" HOST=127.0.0.1 WORKERS="${WORKERS:-2}" PM2_APP_NAME="cpx-conformance" \
    CACHE_STORE="sqlite://$WORK/cache.sqlite" LOG_LEVEL=warn ALLOW_PRIVATE_UPSTREAMS=true \
    UPSTREAM_ALLOW=127.0.0.1 UPSTREAM_PORTS="$ORIGIN_PORT" "$PM2" start ecosystem.config.cjs >/dev/null)
  wait_for "http://127.0.0.1:$PROXY_PORT/" 60
  # The client bounds every request (10 s); the whole run is bounded here too.
  (cd "$SUITE" && timeout 900 env npm_config_base="http://127.0.0.1:$PROXY_PORT/127.0.0.1:$ORIGIN_PORT" \
    npm_config_id='' npm_package_config_id='' node --no-warnings test-engine/cli.mjs) >"$OUT/results-$run.json"
  echo "== run $run of $RUNS ($(date -u +%FT%TZ), $("$PM2" jlist | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const l=JSON.parse(s.trim().split('\n').at(-1));console.log(l.length+' workers, restarts: '+l.map(p=>p.pm2_env.restart_time).join(','))})"))"
  node "$ROOT/scripts/conformance-summary.mjs" "$SUITE" "$OUT/results-$run.json" | tee "$OUT/summary-$run.txt"
done
