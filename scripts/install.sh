#!/usr/bin/env bash
# Installs openclaw-pool on a systemd host (a Debian or Ubuntu VPS with Docker), from this checkout.
#
#   sudo scripts/install.sh --compose-dir /srv/openclaw     install, enable and start the service
#   DESTDIR=/tmp/stage scripts/install.sh --no-start         stage the files only (packaging, tests)
#
# Layout: /opt/openclaw-pool (the build and its production dependencies), /usr/local/bin/openclaw-pool
# and /usr/local/bin/poolctl, /usr/local/lib/openclaw-pool/systemd-stop, /etc/openclaw-pool/pool.env
# (kept if present), /etc/systemd/system/openclaw-pool.service, /etc/logrotate.d/openclaw-pool.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dest=${DESTDIR:-}
start=1
compose_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --no-start) start=0 ;;
    --compose-dir) compose_dir=${2:?--compose-dir needs a directory}; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
log() { printf 'install: %s\n' "$*"; }

if [ ! -f "$src/dist/src/daemon/main.js" ] || [ ! -f "$src/dist/poolctl.mjs" ]; then
  log "building"
  (cd "$src" && npm ci --no-audit --no-fund && npm run build)
fi

opt="$dest/opt/openclaw-pool"
log "installing to $opt"
install -d "$opt"
rm -rf "$opt/dist" "$opt/shims"
cp -r "$src/dist" "$src/shims" "$opt/"
cp "$src/package.json" "$src/package-lock.json" "$src/README.md" "$src/pool.env.example" "$opt/"
(cd "$opt" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
chmod 0755 "$opt/dist/src/daemon/main.js" "$opt/dist/poolctl.mjs"

install -d "$dest/usr/local/bin" "$dest/usr/local/lib/openclaw-pool" "$dest/etc/openclaw-pool" "$dest/etc/systemd/system" "$dest/etc/logrotate.d"
ln -sfn ../../../opt/openclaw-pool/dist/src/daemon/main.js "$dest/usr/local/bin/openclaw-pool"
ln -sfn ../../../opt/openclaw-pool/dist/poolctl.mjs "$dest/usr/local/bin/poolctl"
install -m 0755 "$src/systemd/systemd-stop" "$dest/usr/local/lib/openclaw-pool/systemd-stop"
install -m 0644 "$src/systemd/openclaw-pool.service" "$dest/etc/systemd/system/openclaw-pool.service"
install -m 0644 "$src/systemd/openclaw-pool.logrotate" "$dest/etc/logrotate.d/openclaw-pool"

env_file="$dest/etc/openclaw-pool/pool.env"
if [ -f "$env_file" ]; then
  log "keeping the existing /etc/openclaw-pool/pool.env"
else
  install -m 0640 "$src/pool.env.example" "$env_file"
  {
    echo
    echo "# Set by install.sh:"
    echo "COMPOSE_DIR=${compose_dir:-/srv/openclaw}"
    echo "POOL_SOCKET_GROUP=openclaw-pool"
  } >>"$env_file"
  log "wrote /etc/openclaw-pool/pool.env (COMPOSE_DIR=${compose_dir:-/srv/openclaw}); review MAX_AGENTS and INFRA_SERVICES"
fi

if [ -n "$dest" ]; then
  log "staged under $dest"
  exit 0
fi
getent group openclaw-pool >/dev/null || groupadd --system openclaw-pool
log "members of group openclaw-pool may use poolctl: usermod -aG openclaw-pool <user>"
if [ "$start" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now openclaw-pool.service
  log "started; check with: systemctl status openclaw-pool && poolctl status"
else
  log "next: systemctl daemon-reload && systemctl enable --now openclaw-pool"
fi
