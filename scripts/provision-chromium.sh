#!/usr/bin/env bash
# Installs Debian's chromium for the browser suite (npm run test:browser), on Debian bookworm as
# root. Only that suite needs it; playwright-core drives it and never downloads a browser.
# Idempotent: nothing happens when /usr/bin/chromium already runs.
set -euo pipefail

log() { printf 'provision-chromium: %s\n' "$*" >&2; }

if /usr/bin/chromium --version >/dev/null 2>&1; then
  log "$(/usr/bin/chromium --version 2>/dev/null) already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "error: chromium is missing and installing it needs root: sudo $0"
  exit 1
fi
log "apt-get install chromium"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
log "$(/usr/bin/chromium --version 2>/dev/null) installed"
