#!/usr/bin/env bash
# bench/compare.sh — streamd side by side with reference servers.
#
# Builds bin/streamd, bin/streamload and the reference servers in bench/peers
# (a separate Go module: gorilla/websocket, nbio, gnet + gobwas/ws,
# centrifuge) into bin/peers/, then for every server and scenario, REPEAT
# times: starts the server pinned to one CPU, waits for its port, runs the
# load generator pinned to another CPU with the server's pid, stops the
# server. Results (JSON, .hgrm, logs) go to bench/results/<timestamp>/, and
# bin/peers/comparetable writes the medians and streamd/peer ratios to
# table.md there and to stdout. Loopback only; stops by itself.
#
# Makefile:   bench-compare: ; bash bench/compare.sh
#
# Environment (defaults in brackets):
#   SERVERS     servers to run         [streamd gorilla nbio gnet centrifuge]
#               (streamd_full / streamd_minimal: metrics at full detail or
#               minimal, bench/metrics-*.yaml, to measure their cost;
#               streamd_durable: every echo room durable, bench/durable.yaml,
#               logs on disk under OUT/durable-data)
#   SCENARIOS   scenarios to run       [echo_1k echo_10k fanout_10k fanout_ceiling]
#               (pipeline_5stage: streamd alone, with bench/pipeline.yaml)
#   REPEAT      runs per pair          [3]
#   DURATION    measured window        [10s]
#   WARMUP      load before it         [2s]
#   SIZE        data bytes per message [64]
#   SERVER_CPU  CPU for the server     [0]
#   GEN_CPU     CPU for the generator  [1]
#   PORT        loopback port          [18090]
#   SOURCES     extra --sources for streamload (local 127.x IPs), if any
#   ECHO_BURST  messages per client write in the echo scenarios [4]
#   ARGS_<scenario>  the streamload arguments of a scenario, replacing the
#               built-in ones, e.g. ARGS_echo_1k="echo --conns 500 --rate 50000";
#               a new scenario name works the same way.
#   BASE        the server the ratio table compares the others with [the first of SERVERS]
#   OUT         results folder         [bench/results/<timestamp>]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

SERVERS=${SERVERS:-streamd gorilla nbio gnet centrifuge}
SCENARIOS=${SCENARIOS:-echo_1k echo_10k fanout_10k fanout_ceiling}
# Echo clients send ECHO_BURST messages back to back per write (the same for
# every server): at 100,000 msgs/s one write per message costs the generator
# more than its core on this VM (~7 µs per loopback write), so it would be
# the limit, not the server. ECHO_BURST=1 gives evenly spaced sends.
ECHO_BURST=${ECHO_BURST:-4}
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SIZE=${SIZE:-64}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
HOST=127.0.0.1
PORT=${PORT:-18090}
SOURCES=${SOURCES:-}
OUT=${OUT:-bench/results/$(date +%Y%m%d-%H%M%S)}

scenario_args() {
	local var="ARGS_$1"
	if [[ -n ${!var:-} ]]; then
		echo "${!var}"
		return
	fi
	case $1 in
	echo_1k) echo "echo --conns 1000 --rate 100000 --burst $ECHO_BURST" ;;
	echo_10k) echo "echo --conns 10000 --rate 100000 --burst $ECHO_BURST" ;;
	fanout_10k) echo "fanout --subs 10000 --pubs 1 --rate 10" ;;
	fanout_ceiling) echo "fanout --subs 10000 --pubs 2 --rate 20" ;;
	pipeline_5stage) echo "pipeline --conns 1000 --rate 50000 --stream load --burst $ECHO_BURST" ;;
	*)
		echo "compare.sh: unknown scenario $1 (set ARGS_$1)" >&2
		return 1
		;;
	esac
}

# server_cmd SERVER SCENARIO: pipeline scenarios run streamd with the
# 5-stage pipeline of bench/pipeline.yaml (only streamd has pipelines).
server_cmd() {
	local cfg=""
	[[ ${2:-} != pipeline* ]] || cfg="--config bench/pipeline.yaml"
	case $1 in
	streamd) echo "bin/streamd serve --listen $HOST:$PORT --admin= --in-memory --log-level warn $cfg" ;;
	streamd_full | streamd_minimal) echo "bin/streamd serve --listen $HOST:$PORT --admin= --in-memory --log-level warn --config bench/metrics-${1#streamd_}.yaml" ;;
	streamd_durable) echo "bin/streamd serve --listen $HOST:$PORT --admin= --data $OUT/durable-data --log-level warn --config bench/durable.yaml" ;;
	gorilla | nbio | gnet | centrifuge) echo "bin/peers/$1 --listen $HOST:$PORT" ;;
	*)
		echo "compare.sh: unknown server $1" >&2
		return 1
		;;
	esac
}

source "$ROOT/bench/lib.sh" # seconds, stop_server, cleanup, port_free

# Check everything up front, before building or starting anything.
command -v taskset >/dev/null || { echo "compare.sh: taskset (util-linux) is needed" >&2; exit 1; }
for s in $SCENARIOS; do scenario_args "$s" >/dev/null; done
for s in $SERVERS; do server_cmd "$s" >/dev/null; done
RUN_LIMIT=$(($(seconds "$DURATION") + $(seconds "$WARMUP") + 120)) # + connecting, drain, slack
if (($(nproc) < 2)); then
	echo "compare.sh: warning: $(nproc) CPU: server and generator share it, figures mean little" >&2
fi

SERVER_PID=
GEN_PID=
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port: until HOST:PORT accepts, the server died, or 15 s passed.
wait_port() {
	for _ in $(seq 150); do
		kill -0 "$SERVER_PID" 2>/dev/null || return 1
		if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

echo "== build"
mkdir -p bin/peers
make -s build   # the release build: -trimpath, PGO from profiles/default.pgo when present
go build -o bin/streamload ./cmd/streamload
(cd bench/peers && go build -o "$ROOT/bin/peers/" ./gorilla ./nbio ./gnet ./centrifuge ./cmd/comparetable)

mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "servers: $SERVERS"
	echo "scenarios: $SCENARIOS"
	for s in $SCENARIOS; do echo "  $s: $(scenario_args "$s") --duration $DURATION --warmup $WARMUP --size $SIZE"; done
	echo "repeat: $REPEAT  server cpu: $SERVER_CPU  generator cpu: $GEN_CPU"
	echo "go: $(go version)"
	echo "kernel: $(uname -srm)  cpus: $(nproc)  model: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
	echo "open files: $(ulimit -n)"
} >"$OUT/meta.txt"
cat "$OUT/meta.txt"

failures=0
for scn in $SCENARIOS; do
	read -r -a gen_args <<<"$(scenario_args "$scn")"
	[[ -z $SOURCES ]] || gen_args+=(--sources "$SOURCES")
	for srv in $SERVERS; do
		if [[ $scn == pipeline* && $srv != streamd ]]; then
			continue # the reference servers have no pipelines
		fi
		read -r -a srv_cmd <<<"$(server_cmd "$srv" "$scn")"
		for rep in $(seq "$REPEAT"); do
			name="$srv.$scn.$rep"
			echo "== $name"
			port_free "$PORT"
			rm -rf "$OUT/durable-data" # streamd_durable starts each run on an empty log
			taskset -c "$SERVER_CPU" "${srv_cmd[@]}" >"$OUT/$name.server.log" 2>&1 &
			SERVER_PID=$!
			if ! wait_port; then
				echo "compare.sh: $srv did not come up (see $OUT/$name.server.log)" >&2
				failures=$((failures + 1))
				stop_server
				continue
			fi
			timeout -k 10 "$RUN_LIMIT" taskset -c "$GEN_CPU" bin/streamload "${gen_args[@]}" \
				--addr "$HOST:$PORT" --duration "$DURATION" --warmup "$WARMUP" --size "$SIZE" \
				--pid "$SERVER_PID" --label "$srv" --json "$OUT/$name.json" --hgrm "$OUT/$name.hgrm" \
				>"$OUT/$name.gen.log" 2>&1 &
			GEN_PID=$!
			rc=0
			wait "$GEN_PID" || rc=$?
			GEN_PID=
			if ((rc != 0)); then
				echo "compare.sh: streamload exited $rc (see $OUT/$name.gen.log)" >&2
				failures=$((failures + 1))
			fi
			if ! kill -0 "$SERVER_PID" 2>/dev/null; then
				echo "compare.sh: $srv exited during the run (see $OUT/$name.server.log)" >&2
				failures=$((failures + 1))
			fi
			tail -n 8 "$OUT/$name.gen.log" | sed 's/^/   /'
			stop_server
			sleep 1
		done
	done
done

echo "== table"
bin/peers/comparetable -servers "${SERVERS// /,}" -base "${BASE:-${SERVERS%% *}}" -scenarios "${SCENARIOS// /,}" "$OUT" || failures=$((failures + 1))
echo "results in $OUT ($failures failed runs or steps)"
((failures == 0))
