#!/usr/bin/env bash
# Gets a checkout ready to run: Docker (when root), locked dependencies, a build.
# Each step is skipped when already done, so `npm test` and `npm run demo` can call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

# SETUP_SKIP_DOCKER=1: the caller does not need Docker (the demo with local processes).
if [ -z "${SETUP_SKIP_DOCKER:-}" ] && { ! docker info >/dev/null 2>&1 || ! docker compose version >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ]; then
    bash scripts/provision-docker.sh
  else
    echo "setup: Docker with compose v2 is not available; run 'sudo scripts/provision-docker.sh' (Docker tests will be skipped)" >&2
  fi
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.openclaw-pool-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi

# Build only when a source changed since the last build (the demo and the tests both call this).
build_stamp=dist/.build-stamp
if [ ! -f "$build_stamp" ] || [ -n "$(find src sdk cli examples scripts/bundle.mjs scripts/build-ui.mjs package.json tsconfig.json tsconfig.build.json -newer "$build_stamp" -print -quit)" ]; then
  npm run build --silent
  touch "$build_stamp"
fi
