#!/usr/bin/env bash
# make profile: run a load scenario against bin/streamd while capturing its
# CPU, heap, allocs, mutex and block profiles into profiles/, then refresh
# profiles/default.pgo (the PGO profile `make build` uses) from the CPU one.
# Loopback only; stops by itself. Knobs (env): CONNS, RATE, BURST, PROFILE_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS="${CONNS:-1000}"
RATE="${RATE:-50000}"
BURST="${BURST:-4}"
PROFILE_SECONDS="${PROFILE_SECONDS:-15}"
PORT=18180
ADMIN=19190
out=profiles

go build -o bin/streamd ./cmd/streamd
go build -o bin/streamload ./cmd/streamload

pin_srv=() pin_gen=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_srv=(taskset -c 0) pin_gen=(taskset -c 1)
fi

"${pin_srv[@]}" bin/streamd serve --listen 127.0.0.1:$PORT --admin 127.0.0.1:$ADMIN --in-memory --profile-rates --log-level warn &
srv=$!
trap 'kill $srv 2>/dev/null || true; wait $srv 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$ADMIN/healthz >/dev/null && break; sleep 0.1; done

duration=$((PROFILE_SECONDS + 4))
"${pin_gen[@]}" bin/streamload echo --addr 127.0.0.1:$PORT --conns "$CONNS" --rate "$RATE" --burst "$BURST" \
  --duration "${duration}s" --warmup 2s --pid $srv --quiet --json $out/profile-run.json &
gen=$!
sleep 4 # connections up and warm
curl -sf "http://127.0.0.1:$ADMIN/debug/pprof/profile?seconds=$PROFILE_SECONDS" -o $out/cpu.pprof
curl -sf "http://127.0.0.1:$ADMIN/debug/pprof/heap" -o $out/heap.pprof
curl -sf "http://127.0.0.1:$ADMIN/debug/pprof/allocs" -o $out/allocs.pprof
curl -sf "http://127.0.0.1:$ADMIN/debug/pprof/mutex" -o $out/mutex.pprof
curl -sf "http://127.0.0.1:$ADMIN/debug/pprof/block" -o $out/block.pprof
wait $gen
cp $out/cpu.pprof $out/default.pgo
echo "profile: wrote $out/{cpu,heap,allocs,mutex,block}.pprof and $out/default.pgo"
echo "profile: read one with: go tool pprof -http 127.0.0.1:0 bin/streamd $out/cpu.pprof"
go tool pprof -top -nodecount 15 bin/streamd $out/cpu.pprof 2>/dev/null | sed -n '1,22p'
