#!/usr/bin/env bash
# Installs openclaw-pool on a systemd host (a Debian or Ubuntu VPS with Docker), from this checkout.
#
#   sudo scripts/install.sh --compose-dir /srv/openclaw     install, enable and (re)start the service
#   DESTDIR=/tmp/stage scripts/install.sh --no-start         stage the files only (packaging, tests)
#
# Layout: /opt/openclaw-pool (the build, its production dependencies and systemd/), /usr/local/bin/openclaw-pool
# and /usr/local/bin/poolctl, /usr/local/lib/openclaw-pool/systemd-stop, /etc/openclaw-pool/pool.env
# (kept if present; --compose-dir replaces its COMPOSE_DIR), /etc/systemd/system/openclaw-pool.service
# and its drop-in openclaw-pool.service.d/paths.conf, /etc/logrotate.d/openclaw-pool.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dest=${DESTDIR:-}
start=1
compose_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --no-start) start=0 ;;
    --compose-dir) compose_dir=${2:?--compose-dir needs a directory}; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
log() { printf 'install: %s\n' "$*"; }

# Node >= 20.19 (package.json's engines), both here (npm ci) and where the unit finds it: systemd
# runs `#!/usr/bin/env node` with its own PATH, so a Node in ~/.nvm or /opt/node/bin is not seen.
node_ok() { env "$@" node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null; }
if ! node_ok; then
  log "Node >= 20.19 is needed (found: $(node --version 2>/dev/null || echo none)); Debian bookworm ships 18: see the README's install section" >&2
  exit 1
fi
if [ -z "$dest" ] && ! node_ok PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; then
  log "the service would not find Node >= 20.19 in systemd's PATH (/usr/local/bin, /usr/bin); link it there, e.g. ln -s $(command -v node) /usr/local/bin/node" >&2
  exit 1
fi

if [ ! -f "$src/dist/openclaw-pool.mjs" ] || [ ! -f "$src/dist/poolctl.mjs" ]; then
  log "building"
  (cd "$src" && npm ci --no-audit --no-fund && npm run build)
fi

# A unit of the same name that is not ours is the earlier bash manager's: replacing it (and
# starting us beside its agents) is `openclaw-pool migrate`'s job, which keeps the agents running.
unit_file="$dest/etc/systemd/system/openclaw-pool.service"
foreign_unit=0
if { [ -e "$unit_file" ] || [ -L "$unit_file" ]; } && ! grep -qF 'ExecStart=/usr/local/bin/openclaw-pool' "$unit_file" 2>/dev/null; then
  foreign_unit=1
fi

opt="$dest/opt/openclaw-pool"
log "installing to $opt"
install -d "$opt"
rm -rf "$opt/dist" "$opt/shims" "$opt/systemd"
# systemd/ too: the migration installs the unit (and the drop-in, with write-paths-conf.mjs) from there.
cp -r "$src/dist" "$src/shims" "$src/systemd" "$opt/"
cp "$src/package.json" "$src/package-lock.json" "$src/README.md" "$src/pool.env.example" "$opt/"
(cd "$opt" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier >/dev/null)
chmod 0755 "$opt/dist/openclaw-pool.mjs" "$opt/dist/poolctl.mjs"

install -d "$dest/usr/local/bin" "$dest/usr/local/lib/openclaw-pool" "$dest/etc/openclaw-pool" "$dest/etc/systemd/system" "$dest/etc/logrotate.d"
ln -sfn ../../../opt/openclaw-pool/dist/openclaw-pool.mjs "$dest/usr/local/bin/openclaw-pool"
ln -sfn ../../../opt/openclaw-pool/dist/poolctl.mjs "$dest/usr/local/bin/poolctl"
install -m 0755 "$src/systemd/systemd-stop" "$dest/usr/local/lib/openclaw-pool/systemd-stop"
if [ "$foreign_unit" = 0 ]; then
  install -m 0644 "$src/systemd/openclaw-pool.service" "$unit_file"
fi
install -m 0644 "$src/systemd/openclaw-pool.logrotate" "$dest/etc/logrotate.d/openclaw-pool"

env_file="$dest/etc/openclaw-pool/pool.env"
# Rewritten in place (cat >), so the file keeps its mode 0640 and owner.
if [ -f "$env_file" ]; then
  if [ -n "$compose_dir" ]; then
    rewritten=$(COMPOSE_DIR_NEW="$compose_dir" awk '
      /^[ \t]*(export[ \t]+)?COMPOSE_DIR[ \t]*=/ { print "COMPOSE_DIR=" ENVIRON["COMPOSE_DIR_NEW"]; done = 1; next }
      { print }
      END { if (!done) { print ""; print "# Set by install.sh --compose-dir:"; print "COMPOSE_DIR=" ENVIRON["COMPOSE_DIR_NEW"] } }
    ' "$env_file")
    printf '%s\n' "$rewritten" >"$env_file"
    log "kept the existing /etc/openclaw-pool/pool.env, with COMPOSE_DIR=$compose_dir (--compose-dir) replacing its COMPOSE_DIR line"
  else
    log "keeping the existing /etc/openclaw-pool/pool.env"
  fi
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

# The drop-in applies to any unit of that name, so an earlier manager's unit gets none from us.
pool_dir=
if [ "$foreign_unit" = 0 ]; then
  if paths=$(node "$opt/systemd/write-paths-conf.mjs" "$env_file" "$dest/etc/systemd/system/openclaw-pool.service.d/paths.conf"); then
    { read -r effective_compose_dir; read -r pool_dir; } <<<"$paths"
    log "POOL_DIR=$pool_dir is writable for the service (openclaw-pool.service.d/paths.conf)"
  else
    log "pool.env is invalid (above); fix it and run install.sh again: the service cannot start with it" >&2
  fi
fi

if [ "$foreign_unit" = 1 ]; then
  log "left /etc/systemd/system/openclaw-pool.service as it is, without a drop-in, and started nothing: it is not ours"
  log "an earlier pool manager's openclaw-pool.service is installed; to take it over with its agents running: sudo openclaw-pool migrate --from <its POOL_DIR> (see README: Upgrading from the bash pool manager)"
fi
if [ -n "$dest" ]; then
  log "staged under $dest"
  exit 0
fi
getent group openclaw-pool >/dev/null || groupadd --system openclaw-pool
log "members of group openclaw-pool may use poolctl: sudo usermod -aG openclaw-pool ${SUDO_USER:-<user>} (then log in again)"
[ "$foreign_unit" = 0 ] || exit 0

if [ -n "$pool_dir" ]; then
  [ -d "$effective_compose_dir" ] || log "warning: COMPOSE_DIR $effective_compose_dir does not exist; the service will not start until it does" >&2
  install -d "$pool_dir"
fi
if [ "$start" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable openclaw-pool.service
  # restart, not start: a reinstall runs the new build and pool.env. The agents keep running. The
  # unit is Type=notify, so this returns once poolctl can connect, or fails if the daemon exits.
  if ! systemctl restart openclaw-pool.service; then
    log "the service did not start; see: journalctl -u openclaw-pool -n 20" >&2
    exit 1
  fi
  log "started; check with: systemctl status openclaw-pool && poolctl status"
else
  log "next: systemctl daemon-reload && systemctl enable --now openclaw-pool"
fi
