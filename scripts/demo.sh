#!/usr/bin/env bash
# Runs a demo pool: three slots, five agents, the HTTP bridge on 127.0.0.1:19000, the socket at
# demo/pool/pool.sock.
#   scripts/demo.sh                    agents as local processes that heartbeat over HTTP (no Docker needed)
#   scripts/demo.sh --driver compose   agents as busybox containers (Docker, provisioned when root)
#   ... --tour                         start it, walk through requests, eviction, pool_full and release
#                                      with `poolctl status` in between, then stop and clean up
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
driver=process
tour=0
while [ $# -gt 0 ]; do
  case "$1" in
    --driver) driver=${2:?--driver needs process or compose}; shift ;;
    --tour) tour=1 ;;
    *) echo "demo: unknown option $1 (use --driver process|compose, --tour)" >&2; exit 2 ;;
  esac
  shift
done
case "$driver" in process|compose) ;; *) echo "demo: --driver is process or compose" >&2; exit 2 ;; esac

if [ "$driver" = compose ]; then bash "$root/scripts/setup.sh"; else SETUP_SKIP_DOCKER=1 bash "$root/scripts/setup.sh"; fi
cd "$root/demo"
export POOL_DRIVER=$driver
[ "$driver" = compose ] && docker compose up -d gateway >/dev/null 2>&1
daemon=(node "$root/dist/openclaw-pool.mjs" --config pool.env)
poolctl() { node "$root/dist/poolctl.mjs" --socket "$root/demo/pool/pool.sock" "$@"; }

if [ "$tour" = 0 ]; then
  echo "demo ($driver driver): bridge http://127.0.0.1:19000, socket $root/demo/pool/pool.sock"
  echo "try: curl -s 127.0.0.1:19000/status   or   node dist/poolctl.mjs --socket demo/pool/pool.sock status"
  echo "Ctrl-C stops the daemon (agents keep running; '--tour' cleans up after itself)"
  exec "${daemon[@]}"
fi

url=http://127.0.0.1:19000
"${daemon[@]}" >daemon.log 2>&1 &
pid=$!
cleanup() {
  poolctl shutdown --stop-agents >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "$driver" = compose ] && docker compose down -t 0 >/dev/null 2>&1
  rm -rf pool/state.json pool/roster.json pool/events.jsonl pool/activity pool/shared pool/processes
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  kill -0 "$pid" 2>/dev/null || { cat daemon.log >&2; echo "demo: the daemon exited" >&2; exit 1; }
  grep -q 'ready:' daemon.log && break
  sleep 0.2
done
echo "demo ($driver driver): bridge $url, socket $root/demo/pool/pool.sock"
sleep 1 # autostart: ceo, cto

step() { printf '\n$ %s\n' "$*"; "$@" || true; }
step poolctl status
step curl -s -d '{"agent":"cfo","requested_by":"ceo"}' "$url/request"; echo
step curl -s -d '{"agent":"designer","requested_by":"ceo"}' "$url/request"; echo
step poolctl status
printf '\n(waiting out the 8 s grace period)\n'; sleep 9
step curl -s -d '{"agent":"ceo"}' "$url/heartbeat"; echo
step poolctl start designer --by ceo
step poolctl status
step curl -s -d '{"agent":"gateway"}' "$url/request"; echo
step poolctl stop cfo
step poolctl who
printf '\ndaemon log:\n'; cat daemon.log
grep -q '"evicted"' pool/events.jsonl || { echo "demo: expected an eviction" >&2; exit 1; }
