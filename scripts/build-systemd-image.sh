#!/usr/bin/env bash
# Builds the image of the systemd suite (npm run test:systemd): a minimal Debian bookworm whose
# PID 1 is a real systemd (recipe: STACK-NOTES, "A real systemd as PID 1, in a container").
#
#   sudo scripts/build-systemd-image.sh [IMAGE]     default openclaw-pool/systemd:bookworm
#
# Does nothing when the image already exists. Only systemd, systemd-sysv and dbus on top of
# minbase: no procps, so the unit is tested where /bin/kill does not exist, as on a minimal host.
# Docker, its compose plugin and Node are bind-mounted from this machine by test/support/systemd.ts.
set -euo pipefail
image=${1:-openclaw-pool/systemd:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
log() { printf 'build-systemd-image: %s\n' "$*"; }

# The machine's own Debian mirror (the only package source this workplace reaches).
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  apt-get install -y debootstrap >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null; }
fi

rootfs=$(mktemp -d /tmp/openclaw-pool-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
log "debootstrap bookworm from $mirror (about a minute)"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -20 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  exit 1
}
rm -f "$rootfs.log"
# Units that make no sense in a container and only slow the boot down or leave it degraded.
for unit in systemd-remount-fs.service getty@tty1.service console-getty.service systemd-firstboot.service; do
  ln -sfn /dev/null "$rootfs/etc/systemd/system/$unit"
done
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
log "importing as $image"
tar -C "$rootfs" -c . | docker import --change 'CMD ["/sbin/init"]' - "$image" >/dev/null
log "built $image"
