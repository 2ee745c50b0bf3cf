#!/usr/bin/env bash
# Runs a demo pool: three slots, five busybox agents, the HTTP bridge on 127.0.0.1:19000.
#   scripts/demo.sh          run the daemon in the foreground (Ctrl-C stops it; agents keep running)
#   scripts/demo.sh --tour   start it, walk through requests, eviction, pool_full and release, then clean up
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root/demo"
docker compose up -d gateway >/dev/null 2>&1
daemon=(node "$root/dist/src/daemon/main.js" --config pool.env)

if [ "${1:-}" != "--tour" ]; then
  echo "demo: http://127.0.0.1:19000 (try: curl -s 127.0.0.1:19000/status); Ctrl-C to stop"
  exec "${daemon[@]}"
fi

url=http://127.0.0.1:19000
"${daemon[@]}" >daemon.log 2>&1 &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null && wait "$pid" || true
  docker compose down -t 0 >/dev/null 2>&1 || true
  rm -f pool/state.json pool/roster.json pool/events.jsonl
}
trap cleanup EXIT
for _ in $(seq 1 50); do
  kill -0 "$pid" 2>/dev/null || { cat daemon.log >&2; echo "demo: the daemon exited" >&2; exit 1; }
  grep -q 'ready:' daemon.log && break
  sleep 0.2
done
sleep 1 # autostart

step() { printf '\n$ %s\n' "$*"; "$@"; echo; }
step curl -s "$url/status"
step curl -s -d '{"agent":"cfo","requested_by":"ceo"}' "$url/request"
step curl -s -d '{"agent":"designer","requested_by":"ceo"}' "$url/request"
echo "(waiting out the 10 s grace period)"; sleep 11
step curl -s -d '{"agent":"ceo"}' "$url/heartbeat"
step curl -s -d '{"agent":"designer","requested_by":"ceo"}' "$url/request"
step curl -s -d '{"agent":"gateway"}' "$url/request"
step curl -s -d '{"agent":"cfo"}' "$url/release"
step curl -s "$url/available"
printf '\ndaemon log:\n'; cat daemon.log
grep -q '"evicted"' pool/events.jsonl || { echo "demo: expected an eviction" >&2; exit 1; }
