#!/usr/bin/env bash
# Provisions a real Docker engine for openclaw-pool's tests and demo, on Debian bookworm as root:
#   - dockerd 20.10, busybox-static, libfaketime and strace from bookworm (docker.io, busybox-static, faketime, strace)
#   - compose v2 (the docker CLI plugin), taken from trixie's docker-compose package
#   - dockerd started in the background when it is not answering
#   - the busybox image that test and demo compose files use (built with docker import)
# Idempotent: each step checks before it acts, so running it twice is cheap.
set -euo pipefail

TEST_IMAGE="${POOL_TEST_IMAGE:-openclaw-pool/busybox:latest}"
CACHE_DIR="${PROVISION_CACHE:-/var/cache/openclaw-pool-provision}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
PLUGIN_DIR=/usr/libexec/docker/cli-plugins

log() { printf 'provision-docker: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts dockerd)"

apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_compose_plugin() {
  if docker compose version >/dev/null 2>&1; then return 0; fi
  log "fetching compose v2 from trixie's docker-compose package"
  # Our own lists and cache directories keep the system's package lists bookworm's.
  local mirror sources lists cache debs
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [ -n "$mirror" ] || die "cannot find the Debian mirror in /etc/apt/sources.list.d/debian.sources"
  sources="$CACHE_DIR/trixie.list"
  lists="$CACHE_DIR/lists"
  cache="$CACHE_DIR/cache"
  mkdir -p "$lists/partial" "$cache/archives/partial" "$CACHE_DIR/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$sources"
  local opts=(-o "Dir::Etc::sourcelist=$sources" -o Dir::Etc::sourceparts=/dev/null
              -o "Dir::State::Lists=$lists" -o "Dir::Cache=$cache")
  apt-get "${opts[@]}" update -qq
  (cd "$CACHE_DIR/debs" && rm -f docker-compose_*.deb && apt-get "${opts[@]}" -o APT::Sandbox::User=root download docker-compose)
  debs=("$CACHE_DIR"/debs/docker-compose_*.deb)
  [ -f "${debs[0]}" ] || die "apt-get download docker-compose produced no .deb"
  rm -rf "$CACHE_DIR/extract"
  dpkg -x "${debs[0]}" "$CACHE_DIR/extract"
  install -D -m 0755 "$CACHE_DIR/extract/usr/libexec/docker/cli-plugins/docker-compose" "$PLUGIN_DIR/docker-compose"
  docker compose version >/dev/null || die "docker compose does not run after installing the plugin"
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  # A killed dockerd may linger as a zombie of its old parent: only a live one counts.
  if ! ps -C dockerd -o stat= 2>/dev/null | grep -qv '^Z'; then
    log "starting dockerd (log: $DOCKERD_LOG)"
    # containerd is started by dockerd itself when no system containerd is running.
    nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  tail -n 30 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not answer 'docker info' within 60 s"
}

build_test_image() {
  if docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then return 0; fi
  log "building $TEST_IMAGE from busybox-static"
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/pool"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$TEST_IMAGE" >/dev/null
  rm -rf "$root"
}

# faketime: the reliability suite steps a daemon's wall clock (libfaketime) and leaves its monotonic clock alone.
# strace: bench:footprint counts the processes an idle daemon spawns (strace -f -p).
apt_install docker.io busybox-static faketime strace
install_compose_plugin
start_dockerd
build_test_image
log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /'), image $TEST_IMAGE"
