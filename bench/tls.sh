#!/usr/bin/env bash
# bench/tls.sh — what TLS costs: the echo scenario over ws:// and wss://
# against ONE streamd process that serves both listeners (issue 10).
#
# Builds streamd and streamload into OUT/bin, makes a throwaway ECDSA P-256
# certificate with openssl, starts streamd pinned to SERVER_CPU with a
# config that adds a tls block, then runs streamload pinned to GEN_CPU,
# alternating plain and TLS, REPEAT times each. Results (JSON, .hgrm,
# logs) go to OUT; bin/peers/comparetable writes the medians and the
# tls/plain ratios to OUT/table.md and stdout. Loopback only.
#
#   bash bench/tls.sh                    # 1,000 conns, 20,000 msgs/s
#   ARGS="echo --conns 1000 --rate 50000 --burst 4" bash bench/tls.sh
#
# The generator terminates TLS too (loadtest/tls.go), so the wss latency
# is client + server TLS; the server CPU column is the server's alone.
#
# Environment (defaults in brackets):
#   ARGS        streamload arguments [echo --conns 1000 --rate 20000 --burst 4]
#   REPEAT      runs per listener    [3]
#   DURATION    measured window      [10s]
#   WARMUP      load before it       [2s]
#   SERVER_CPU  CPU for the server   [0]
#   GEN_CPU     CPU for the generator [1]
#   PORT, TLS_PORT  loopback ports   [18090, 18443]
#   OUT         results folder       [bench/results/tls-<timestamp>]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
ARGS=${ARGS:-echo --conns 1000 --rate 20000 --burst 4}
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
HOST=127.0.0.1
PORT=${PORT:-18090}
TLS_PORT=${TLS_PORT:-18443}
OUT=${OUT:-bench/results/tls-$(date +%Y%m%d-%H%M%S)}
SCN=echo
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac

for c in taskset openssl; do
	command -v $c >/dev/null || { echo "tls.sh: $c is needed" >&2; exit 1; }
done

echo "== build (into $OUT/bin: other work's bin/ is left alone)"
mkdir -p "$OUT/bin"
BIN_DIR=$OUT/bin
make -s build BIN="$BIN_DIR/streamd" # the release build: -trimpath, PGO
go build -o "$BIN_DIR/streamload" ./cmd/streamload
(cd bench/peers && go build -o "$BIN_DIR/" ./cmd/comparetable)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj "/CN=streamd bench" -addext "subjectAltName=IP:127.0.0.1" \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
chmod 600 "$OUT/key.pem"
cat >"$OUT/tls.yaml" <<EOF
auth: {anonymous: true}
tls:
  listen: $HOST:$TLS_PORT
  cert_file: $OUT/cert.pem
  key_file: $OUT/key.pem
EOF

SERVER_PID=
cleanup() {
	[[ -z $SERVER_PID ]] && return
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

taskset -c "$SERVER_CPU" "$BIN_DIR/streamd" serve --config "$OUT/tls.yaml" --listen "$HOST:$PORT" --admin= \
	--in-memory --log-level warn >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 150); do
	(exec 3<>"/dev/tcp/$HOST/$TLS_PORT") 2>/dev/null && break
	kill -0 "$SERVER_PID" 2>/dev/null || { echo "tls.sh: streamd died (see $OUT/server.log)" >&2; exit 1; }
	sleep 0.1
done

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "args: $ARGS --duration $DURATION --warmup $WARMUP; repeat $REPEAT, alternated plain/tls, one server process"
	echo "server cpu: $SERVER_CPU  generator cpu: $GEN_CPU  go: $(go version)  kernel: $(uname -sr)"
} | tee "$OUT/meta.txt"

read -r -a gen_args <<<"$ARGS"
failures=0
for rep in $(seq "$REPEAT"); do
	for mode in plain tls; do
		name="$mode.$SCN.$rep"
		addr="ws://$HOST:$PORT/ws"
		extra=()
		if [[ $mode == tls ]]; then
			addr="wss://$HOST:$TLS_PORT/ws"
			extra=(--tls-ca "$OUT/cert.pem")
		fi
		echo "== $name"
		if ! taskset -c "$GEN_CPU" "$BIN_DIR/streamload" "${gen_args[@]}" --addr "$addr" "${extra[@]}" \
			--duration "$DURATION" --warmup "$WARMUP" --pid "$SERVER_PID" --label "$mode" \
			--json "$OUT/$name.json" --hgrm "$OUT/$name.hgrm" >"$OUT/$name.gen.log" 2>&1; then
			echo "tls.sh: streamload failed (see $OUT/$name.gen.log)" >&2
			failures=$((failures + 1))
		fi
		tail -n 5 "$OUT/$name.gen.log" | sed 's/^/   /'
		sleep 1
	done
done

echo "== table"
"$BIN_DIR/comparetable" -servers tls,plain -base tls -scenarios "$SCN" "$OUT" || failures=$((failures + 1))
echo "results in $OUT ($failures failed runs)"
((failures == 0))
