#!/usr/bin/env bash
# make loadtest: a short, self-stopping load run on loopback. See Makefile.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=18080
mkdir -p bench/results
pin_srv=() pin_gen=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_srv=(taskset -c 0) pin_gen=(taskset -c 1)
fi
start() {
  "${pin_srv[@]}" bin/streamd serve --listen 127.0.0.1:$PORT --admin "" --in-memory --log-level warn &
  srv=$!
  sleep 1
}
trap 'kill $srv 2>/dev/null || true' EXIT
start
"${pin_gen[@]}" bin/streamload echo --addr 127.0.0.1:$PORT --conns "${CONNS:-1000}" --rate "${RATE:-20000}" \
  --duration 5s --warmup 2s --pid $srv --json bench/results/loadtest-echo.json --hgrm bench/results/loadtest-echo.hgrm
kill $srv; wait $srv 2>/dev/null || true
start
"${pin_gen[@]}" bin/streamload idle --addr 127.0.0.1:$PORT --conns "${IDLE_CONNS:-10000}" --pid $srv
