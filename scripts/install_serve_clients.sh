#!/usr/bin/env bash
# Installs the npm packages the `loom serve` tests and load test use into a test-only folder (nothing global):
#   openai@6 (the official client; 7 needs Node >= 22, Debian's is 20) and autocannon (the load generator).
# Prints the folder on success; exits 3 when npm or its registry cannot be reached (the caller skips, visibly).
#   dir=$(scripts/install_serve_clients.sh) || echo "skipping: npm unreachable"
set -uo pipefail
DIR="${LOOM_SERVE_CLIENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/loom/serve-clients}"
# ctest runs tests side by side, and on a fresh machine several may install at once: one at a time, the others
# wait and then find the packages installed.
mkdir -p "$(dirname "$DIR")" && exec 9>"$DIR.lock" && flock 9
if [ -f "$DIR/node_modules/openai/package.json" ] && [ -f "$DIR/node_modules/autocannon/package.json" ]; then
  echo "$DIR"; exit 0
fi
command -v npm >/dev/null || { echo "npm not found" >&2; exit 3; }
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name":"loom-serve-clients","private":true}' > "$DIR/package.json"
if ! (cd "$DIR" && timeout 300 npm install --silent --no-audit --no-fund openai@6 autocannon@7 >&2); then
  echo "npm install failed (registry unreachable?)" >&2; exit 3
fi
echo "$DIR"
