#!/usr/bin/env bash
# A real two-node Docker Swarm on one machine, for the swarm driver's tests and benchmark:
#   manager: the main dockerd, advertising 10.213.0.1 on a bridge of its own (POOL_SWARM_BRIDGE)
#   worker:  a second dockerd in network namespace pool-n1 (10.213.0.2) and UTS namespace
#            (hostname pool-n1, so that the two nodes have different names), on its own socket,
#            data root and exec root, joined to the swarm, given the test image by docker save | load.
# Traffic stays between the root namespace and pool-n1 on 10.213.0.0/24; overlay networks take
# their subnets from 10.213.128.0/17.
#
#   swarm-test-env.sh run CMD...   up, then CMD with POOL_SWARM_* set, then down whatever happens
#   swarm-test-env.sh up | down    the two halves (down removes only what up recorded as its own)
#
# The main engine never stays in the swarm after `run`: down runs from an EXIT trap, also when
# CMD fails or the script is interrupted. A swarm the main engine was already in (not made by this
# script) is left alone, and up refuses to run beside it.
set -euo pipefail

NETNS=pool-n1
WORKER_NODE=pool-n1
BRIDGE=poolsw0
VETH_HOST=poolsw0-n1
VETH_NS=poolsw0-ns
SUBNET_BITS=24
MANAGER_ADDR=10.213.0.1
WORKER_ADDR=10.213.0.2
ADDR_POOL=10.213.128.0/17
RUN_DIR=/run/openclaw-pool-swarm
WORKER_SOCK=/run/docker-pool-n1.sock
WORKER_ROOT=/var/lib/openclaw-pool-swarm/n1
WORKER_EXEC=$RUN_DIR/n1
WORKER_PID=$RUN_DIR/n1.pid
WORKER_LOG=/var/log/openclaw-pool-swarm-n1.log
STATE=$RUN_DIR/created
TEST_IMAGE="${POOL_TEST_IMAGE:-openclaw-pool/busybox:latest}"

log() { printf 'swarm-test-env: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
worker() { docker -H "unix://$WORKER_SOCK" "$@"; }
created() { [ -f "$STATE" ] && grep -qx "$1" "$STATE"; }
record() { echo "$1" >>"$STATE"; }

preflight() {
  [ "$(id -u)" = 0 ] || die "must run as root (it creates a network namespace and a second dockerd)"
  local tool
  for tool in ip nsenter unshare dockerd docker; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/provision-docker.sh)"
  done
  docker info >/dev/null 2>&1 || die "the main Docker engine is not answering (run scripts/provision-docker.sh)"
  docker image inspect "$TEST_IMAGE" >/dev/null 2>&1 || die "the test image $TEST_IMAGE is missing (run scripts/provision-docker.sh)"
}

up() {
  preflight
  # A run killed before its trap (kill -9) leaves its record behind: undo that first.
  [ -f "$STATE" ] && { log "cleaning up what an earlier run left"; down; }
  local swarm_state
  swarm_state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  [ "$swarm_state" = inactive ] || die "the main Docker engine is already in a swarm ($swarm_state) that this script did not create; refusing to touch it"
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "interface $BRIDGE exists but this script has no record of it; remove it by hand if it is a leftover"
  ip netns list | grep -qw "$NETNS" && die "network namespace $NETNS exists but this script has no record of it; remove it by hand if it is a leftover"
  mkdir -p "$RUN_DIR"
  : >"$STATE"

  log "network: $BRIDGE $MANAGER_ADDR/$SUBNET_BITS <-> $NETNS $WORKER_ADDR"
  ip link add "$BRIDGE" type bridge && record bridge
  ip addr add "$MANAGER_ADDR/$SUBNET_BITS" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ip netns add "$NETNS" && record netns
  ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
  ip link set "$VETH_HOST" master "$BRIDGE" up
  ip link set "$VETH_NS" netns "$NETNS"
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" link set "$VETH_NS" name eth0
  ip -n "$NETNS" addr add "$WORKER_ADDR/$SUBNET_BITS" dev eth0
  ip -n "$NETNS" link set eth0 up

  log "worker dockerd in $NETNS (log: $WORKER_LOG)"
  mkdir -p "$WORKER_ROOT" "$WORKER_EXEC"
  record worker
  # nsenter --net, not `ip netns exec`: the latter remounts /sys and dockerd loses the cgroup mounts.
  nohup nsenter --net="/var/run/netns/$NETNS" unshare --uts sh -c \
    'hostname "$0" && exec dockerd --data-root "$1" --exec-root "$2" -H "unix://$3" --pidfile "$4" --bridge=none --iptables=false' \
    "$WORKER_NODE" "$WORKER_ROOT" "$WORKER_EXEC" "$WORKER_SOCK" "$WORKER_PID" >"$WORKER_LOG" 2>&1 </dev/null &
  local _
  for _ in $(seq 1 60); do
    worker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  worker info >/dev/null 2>&1 || { tail -n 20 "$WORKER_LOG" >&2; die "the worker dockerd did not answer within 30 s"; }

  log "swarm: manager $(hostname) at $MANAGER_ADDR, worker $WORKER_NODE at $WORKER_ADDR"
  docker swarm init --advertise-addr "$MANAGER_ADDR" --listen-addr "$MANAGER_ADDR:2377" \
    --default-addr-pool "$ADDR_POOL" --default-addr-pool-mask-length 24 >/dev/null
  record "manager $(docker info --format '{{.Swarm.NodeID}}')"
  worker swarm join --token "$(docker swarm join-token -q worker)" \
    --advertise-addr "$WORKER_ADDR" --listen-addr "$WORKER_ADDR:2377" "$MANAGER_ADDR:2377" >/dev/null
  for _ in $(seq 1 60); do
    [ "$(docker node ls --filter "name=$WORKER_NODE" --format '{{.Status}}')" = Ready ] && break
    sleep 0.5
  done
  [ "$(docker node ls --filter "name=$WORKER_NODE" --format '{{.Status}}')" = Ready ] || die "the worker did not become Ready within 30 s"

  docker save "$TEST_IMAGE" | worker load >/dev/null
  log "ready: $(docker node ls --format '{{.Hostname}} ({{.ManagerStatus}}{{if not .ManagerStatus}}worker{{end}}, {{.Status}})' | paste -sd ' ' -)"
}

down() {
  [ -f "$STATE" ] || return 0
  # Each step goes on when the previous one failed: leave as little behind as possible.
  set +e
  if created worker && worker info >/dev/null 2>&1; then
    worker swarm leave --force >/dev/null 2>&1 || true
  fi
  local manager
  manager=$(sed -n 's/^manager //p' "$STATE")
  if [ -n "$manager" ] && [ "$(docker info --format '{{.Swarm.NodeID}}' 2>/dev/null)" = "$manager" ]; then
    log "the main engine leaves the swarm"
    docker swarm leave --force >/dev/null || log "warning: 'docker swarm leave --force' failed on the main engine"
  fi
  if created worker; then
    local pid=""
    [ -f "$WORKER_PID" ] && pid=$(cat "$WORKER_PID")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      log "stopping the worker dockerd ($pid)"
      kill -TERM "$pid"
      local _
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    # Anything the worker left mounted under its roots (its network namespaces, say) goes before
    # the directories do; /proc/self/mounts names them by their real paths, hence /run, not /var/run.
    awk -v a="$WORKER_ROOT/" -v b="$WORKER_EXEC/" 'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/self/mounts |
      sort -r | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
    rm -rf "$WORKER_ROOT" "$WORKER_EXEC" "$WORKER_SOCK" "$WORKER_PID"
  fi
  if created netns; then ip netns del "$NETNS" 2>/dev/null || true; fi
  if created bridge; then
    ip link del "$VETH_HOST" 2>/dev/null || true
    ip link del "$BRIDGE" 2>/dev/null || true
  fi
  rm -f "$STATE"
  rmdir "$RUN_DIR" "$(dirname "$WORKER_ROOT")" 2>/dev/null
  log "cleaned up"
  set -e
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  run)
    shift
    [ $# -gt 0 ] || die "usage: $0 run CMD..."
    trap down EXIT
    up
    # In the background, so that a signal to this script runs its trap at once (bash defers traps
    # while a foreground command runs) and is passed on; a background job ignores SIGINT, so the
    # command gets SIGTERM either way.
    POOL_SWARM_WORKER_HOST="unix://$WORKER_SOCK" POOL_SWARM_WORKER_NODE="$WORKER_NODE" POOL_SWARM_MANAGER_NODE="$(hostname)" \
      POOL_SWARM_MANAGER_ADDR="$MANAGER_ADDR" "$@" &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null' INT TERM
    status=0
    while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done
    exit "$status"
    ;;
  *) die "usage: $0 up | down | run CMD..." ;;
esac
