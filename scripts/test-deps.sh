#!/usr/bin/env bash
# test-deps.sh installs what the end-to-end tests in e2e/ need and prints
# nothing when it is all there already (idempotent; `make test-deps` runs it):
#   - e2e/node/node_modules, from e2e/node/package-lock.json (npm ci), when
#     node and npm are on PATH (without them TestNodeWS skips);
#   - Debian's chromium at /usr/bin/chromium (TestChromium), through apt-get,
#     as root or through sudo.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nodedir="$root/e2e/node"
stamp="$nodedir/node_modules/.streamd-lock.sha256"

# --- Node packages -----------------------------------------------------------
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	want="$(sha256sum "$nodedir/package-lock.json" "$nodedir/package.json" | sha256sum | cut -d' ' -f1)"
	have=""
	if [[ -f "$stamp" ]]; then
		have="$(cat "$stamp")"
	fi
	if [[ ! -d "$nodedir/node_modules" || "$have" != "$want" ]]; then
		echo "test-deps: npm ci in e2e/node" >&2
		(cd "$nodedir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
		echo "$want" >"$stamp"
	fi
else
	echo "test-deps: node/npm not on PATH: e2e TestNodeWS will skip (apt-get install nodejs npm to run it)" >&2
fi

# --- Chromium ----------------------------------------------------------------
if [[ ! -x /usr/bin/chromium ]]; then
	if [[ "$(id -u)" -eq 0 ]]; then
		sudo=()
	elif command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		echo "test-deps: /usr/bin/chromium is missing and this is not root: install Debian's chromium package (apt-get install chromium)" >&2
		exit 1
	fi
	echo "test-deps: apt-get install chromium" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
	if [[ ! -x /usr/bin/chromium ]]; then
		echo "test-deps: apt-get installed chromium but /usr/bin/chromium is still missing" >&2
		exit 1
	fi
fi
