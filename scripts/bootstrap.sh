#!/usr/bin/env bash
# Installs the npm dependencies (including Node 24 itself, as the `node` devDependency) when
# they are missing or older than package-lock.json. Cheap when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/node ] || [ ! -x node_modules/.bin/vitest ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi
