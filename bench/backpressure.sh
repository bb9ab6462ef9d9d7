#!/usr/bin/env bash
# bench/backpressure.sh — issue 8's measurements with the load generator.
#
# Builds streamd and streamload into OUT/bin, then for each part starts
# streamd pinned to SERVER_CPU with the part's engine config (copied to
# OUT) and its admin port on loopback, waits until the machine is quiet
# (1-minute load average below MAX_LOAD), runs streamload pinned to
# GEN_CPU, and stops streamd. Results (JSON, .hgrm, logs, the RSS series)
# go to OUT; each part's summary to OUT/summary.txt and stdout. Loopback
# only; every part is bounded in count and time and stops by itself.
#
#   fairness  bench/backpressure-rate.yaml (max_messages_per_second 1000,
#             flow_control): `streamload fairness` — FAIR_ARGS echo clients
#             each in its own room, REPEAT runs without and REPEAT with one
#             flooder (its own room, publishing as fast as streamd reads,
#             SCHED_IDLE on the generator's CPU), alternated; medians,
#             ratios, and the flooder's sent / accepted / rate_limited,
#             checked against the engine's own rate_limited count.
#   flow      the same config: `streamload flow` — a producer that honours
#             flow control floods FLOW_ONSETS times from a full bucket:
#             crossing of rate×elapsed + half the bucket → pause arrival,
#             what was in flight, resume.
#   stall     bench/backpressure-stall.yaml (drop-oldest, lag_bytes 16 KiB,
#             max_pending 100, socket_send_buffer 16 KiB): `streamload
#             stall` — a subscriber stops reading while the room gets a
#             fixed rate; stop → the policy applied (from the first gap's
#             seq and its publish time), once per STALL_SETS entry
#             RATE:RCVBUF (publishes/s : the subscriber's SO_RCVBUF, 0:
#             the system's, autotuned).
#   soak      bench/backpressure-soak.yaml (drop-oldest, lag_bytes 256 KiB,
#             max_pending 1000): `streamload fanout --slow-read --count` for
#             SOAK_WARMUP then SOAK_DURATION of the same overload; the
#             engine's RSS every second (slope of a least-squares line
#             over the window's last 50 s, and the mean of each minute
#             since the load began; the warm-up lets the Go heap reach
#             its working size, one GC cycle, ~80 s at this load's ~90
#             KiB/s of garbage, before the window; streamd runs with
#             GODEBUG=gctrace=1, so soak.server.log has the live heap after
#             every GC, summed up in summary.txt), every seq of every
#             subscriber accounted for, the engine's backpressure_dropped
#             against the gaps the slow subscribers were told of.
#
#   bash bench/backpressure.sh                         # every part (~8 min)
#   PARTS="flow stall" bash bench/backpressure.sh
#
# Environment (defaults in brackets):
#   PARTS        parts to run                [fairness flow stall soak]
#   REPEAT       fairness runs of each kind  [3]
#   DURATION     fairness measured window    [10s]
#   WARMUP       fairness warm-up            [2s]
#   FAIR_ARGS    fairness echo arguments     [--conns 100 --rate 10000]
#   FLOW_ONSETS  flow onsets                 [11]
#   FLOW_LIMIT   the config's max_messages_per_second [1000]
#   FLOW_BATCHES messages per write, one flow run each [1 32]
#   STALL_ONSETS stall onsets per setting    [7]
#   STALL_SETS   stall settings RATE:RCVBUF  [2000:4096 2000:0 10000:4096 10000:0]
#   STALL_SIZE   stall data bytes            [1024]
#   SOAK_DURATION soak window                [60s]
#   SOAK_WARMUP  soak load before the window [120s]
#   SOAK_ARGS    soak fanout arguments       [--subs 104 --slow 4 --slow-read 65536 --pubs 1 --rate 1000 --size 512]
#   MAX_LOAD     wait for a 1-minute load average below this before each measurement [1.5]
#   LOAD_WAIT    wait at most this many seconds for it [600]
#   SERVER_CPU, GEN_CPU  CPUs for streamd and streamload [0, 1]
#   PORT, ADMIN_PORT     loopback ports [18090, 18091]
#   OUT          results folder [bench/results/backpressure-<timestamp>]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PARTS=${PARTS:-fairness flow stall soak}
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
FAIR_ARGS=${FAIR_ARGS:---conns 100 --rate 10000}
FLOW_ONSETS=${FLOW_ONSETS:-11}
FLOW_LIMIT=${FLOW_LIMIT:-1000}
FLOW_BATCHES=${FLOW_BATCHES:-1 32}
STALL_ONSETS=${STALL_ONSETS:-7}
STALL_SETS=${STALL_SETS:-2000:4096 2000:0 10000:4096 10000:0}
STALL_SIZE=${STALL_SIZE:-1024}
SOAK_DURATION=${SOAK_DURATION:-60s}
SOAK_WARMUP=${SOAK_WARMUP:-120s}
SOAK_ARGS=${SOAK_ARGS:---subs 104 --slow 4 --slow-read 65536 --pubs 1 --rate 1000 --size 512}
MAX_LOAD=${MAX_LOAD:-1.5}
LOAD_WAIT=${LOAD_WAIT:-600}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
HOST=127.0.0.1
PORT=${PORT:-18090}
ADMIN_PORT=${ADMIN_PORT:-18091}
OUT=${OUT:-bench/results/backpressure-$(date +%Y%m%d-%H%M%S)}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac

for c in taskset timeout; do
	command -v $c >/dev/null || { echo "backpressure.sh: $c is needed" >&2; exit 1; }
done
for p in $PARTS; do
	case $p in fairness | flow | stall | soak) ;; *)
		echo "backpressure.sh: unknown part $p (fairness flow stall soak)" >&2
		exit 1
		;;
	esac
done
if (($(nproc) < 2)); then
	echo "backpressure.sh: warning: $(nproc) CPU: server and generator share it, figures mean little" >&2
fi

echo "== build (into $OUT/bin: other work's bin/ is left alone)"
mkdir -p "$OUT/bin"
BIN_DIR=$OUT/bin
make -s build BIN="$BIN_DIR/streamd" # the release build: -trimpath, PGO
go build -o "$BIN_DIR/streamload" ./cmd/streamload
cp bench/backpressure-rate.yaml bench/backpressure-stall.yaml bench/backpressure-soak.yaml "$OUT/"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "parts: $PARTS"
	echo "fairness: echo $FAIR_ARGS --duration $DURATION --warmup $WARMUP --flood 1; repeat $REPEAT, alternated without/with"
	echo "flow: --limit $FLOW_LIMIT --onsets $FLOW_ONSETS, --batch $FLOW_BATCHES"
	echo "stall: --size $STALL_SIZE --onsets $STALL_ONSETS, rate:SO_RCVBUF $STALL_SETS"
	echo "soak: fanout $SOAK_ARGS --duration $SOAK_DURATION --warmup $SOAK_WARMUP"
	echo "server cpu: $SERVER_CPU  generator cpu: $GEN_CPU  max load: $MAX_LOAD"
	echo "go: $(go version)"
	echo "kernel: $(uname -srm)  cpus: $(nproc)  model: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
	echo "build: $(git describe --always --dirty 2>/dev/null || echo unknown)"
} | tee "$OUT/meta.txt"

source "$ROOT/bench/lib.sh" # seconds, stop_server, cleanup, port_free
SERVER_PID=
GEN_PID=
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server CONFIG NAME [ENV=VALUE…]: streamd on SERVER_CPU, until both
# ports answer.
start_server() {
	port_free "$PORT" "$ADMIN_PORT"
	env "${@:3}" taskset -c "$SERVER_CPU" "$BIN_DIR/streamd" serve --config "$OUT/$1" --listen "$HOST:$PORT" \
		--admin "$HOST:$ADMIN_PORT" --in-memory --log-level warn >"$OUT/$2.server.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 150); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null && (exec 3<>"/dev/tcp/$HOST/$ADMIN_PORT") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "backpressure.sh: streamd did not come up (see $OUT/$2.server.log)" >&2
	return 1
}

# wait_load: until the 1-minute load average is below MAX_LOAD (another
# engineer's build would skew the figures), at most LOAD_WAIT seconds.
wait_load() {
	local waited=0 load
	while :; do
		load=$(cut -d' ' -f1 /proc/loadavg)
		if awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }'; then
			echo "   load average $load"
			return 0
		fi
		if ((waited >= LOAD_WAIT)); then
			echo "   load average $load after ${waited}s: going on anyway (noted in $OUT/meta.txt)"
			echo "load average $load at $(date -u +%H:%M:%S) after waiting ${waited}s" >>"$OUT/meta.txt"
			return 0
		fi
		sleep 5
		waited=$((waited + 5))
	done
}

# gen NAME LIMIT_S ARGS...: streamload on GEN_CPU, its output in NAME.gen.log.
failures=0
gen() {
	local name=$1 limit=$2
	shift 2
	timeout -k 10 "$limit" taskset -c "$GEN_CPU" "$BIN_DIR/streamload" "$@" >"$OUT/$name.gen.log" 2>&1 &
	GEN_PID=$!
	local rc=0
	wait "$GEN_PID" || rc=$?
	GEN_PID=
	if ((rc != 0)); then
		echo "backpressure.sh: streamload $name exited $rc (see $OUT/$name.gen.log)" >&2
		failures=$((failures + 1))
	fi
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		echo "backpressure.sh: streamd exited during $name (see $OUT/$name.server.log)" >&2
		failures=$((failures + 1))
	fi
}

summary() { # NAME: the closing block of a part's log, into summary.txt
	{
		echo "== $1"
		sed -n "/${2}/,\$p" "$OUT/$1.gen.log"
		echo
	} | tee -a "$OUT/summary.txt"
}

for part in $PARTS; do
	case $part in
	fairness)
		echo "-- fairness"
		start_server backpressure-rate.yaml fairness
		wait_load
		mkdir -p "$OUT/fairness"
		read -r -a fargs <<<"$FAIR_ARGS"
		per_run=$(($(seconds "$DURATION") + $(seconds "$WARMUP") + 30))
		gen fairness $((2 * REPEAT * per_run + 2 * REPEAT * LOAD_WAIT + 60)) fairness "${fargs[@]}" --flood 1 \
			--addr "$HOST:$PORT" --admin "$HOST:$ADMIN_PORT" --pid "$SERVER_PID" \
			--duration "$DURATION" --warmup "$WARMUP" --repeat "$REPEAT" \
			--max-load "$MAX_LOAD" --load-wait "${LOAD_WAIT}s" \
			--out "$OUT/fairness" --json "$OUT/fairness.json"
		stop_server
		summary fairness '^| well-behaved'
		;;
	flow)
		for batch in $FLOW_BATCHES; do
			name=flow.batch$batch
			echo "-- $name"
			start_server backpressure-rate.yaml "$name"
			wait_load
			gen "$name" $((FLOW_ONSETS * 10 + 60)) flow --addr "$HOST:$PORT" --admin "$HOST:$ADMIN_PORT" \
				--limit "$FLOW_LIMIT" --onsets "$FLOW_ONSETS" --batch "$batch" --json "$OUT/$name.json"
			stop_server
			summary "$name" '^onset  1'
		done
		;;
	stall)
		for set in $STALL_SETS; do
			rate=${set%%:*} rb=${set#*:}
			name=stall.rate$rate.rcvbuf$rb
			echo "-- $name"
			start_server backpressure-stall.yaml "$name"
			wait_load
			gen "$name" $((STALL_ONSETS * 20 + 60)) stall --addr "$HOST:$PORT" --admin "$HOST:$ADMIN_PORT" \
				--rate "$rate" --size "$STALL_SIZE" --onsets "$STALL_ONSETS" --rcvbuf "$rb" --json "$OUT/$name.json"
			stop_server
			summary "$name" '^onset 1:'
		done
		;;
	soak)
		echo "-- soak"
		start_server backpressure-soak.yaml soak GODEBUG=gctrace=1
		wait_load
		read -r -a sargs <<<"$SOAK_ARGS"
		gen soak $(($(seconds "$SOAK_DURATION") + $(seconds "$SOAK_WARMUP") + 120)) fanout "${sargs[@]}" \
			--addr "$HOST:$PORT" --admin "$HOST:$ADMIN_PORT" --pid "$SERVER_PID" \
			--duration "$SOAK_DURATION" --warmup "$SOAK_WARMUP" --drain 10s --json "$OUT/soak.json" --hgrm "$OUT/soak.hgrm"
		stop_server
		summary soak '^fanout against'
		{ # the live heap after each GC (gctrace: "at start->at end->live MB")
			echo "streamd's GCs (GODEBUG=gctrace=1: @seconds since start, heap at start->end->live MB, goal):"
			grep '^gc ' "$OUT/soak.server.log" | awk '{printf "  %s %s %s %s goal;", $2, $3, $11, $13} END {print ""}'
			echo
		} | tee -a "$OUT/summary.txt"
		;;
	esac
	sleep 1
done

echo "results in $OUT ($failures failed runs or steps)"
((failures == 0))
