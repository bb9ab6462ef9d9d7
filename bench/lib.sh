# bench/lib.sh — what the bench scripts share; sourced, not run. The
# script sets HOST, SERVER_PID and GEN_PID (empty when none runs).

# seconds DURATION: whole seconds in a Go duration like 10s, 1m, 1m30s,
# 500ms (rounded up); fails on anything else.
seconds() {
	local d=$1 total=0 n
	while [[ $d =~ ^([0-9]+)(ms|s|m|h)(.*)$ ]]; do
		n=${BASH_REMATCH[1]}
		case ${BASH_REMATCH[2]} in
		ms) total=$((total + (n + 999) / 1000)) ;;
		s) total=$((total + n)) ;;
		m) total=$((total + n * 60)) ;;
		h) total=$((total + n * 3600)) ;;
		esac
		d=${BASH_REMATCH[3]}
	done
	[[ -z $d ]] || { echo "${0##*/}: cannot read duration $1" >&2; return 1; }
	echo "$total"
}

# stop_server: SIGTERM to SERVER_PID, SIGKILL after 10 s.
stop_server() {
	[[ -n $SERVER_PID ]] || return 0
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# cleanup (on exit): stops the generator and the server still running.
cleanup() {
	if [[ -n $GEN_PID ]]; then
		kill -TERM "$GEN_PID" 2>/dev/null || true
		wait "$GEN_PID" 2>/dev/null || true
	fi
	stop_server
}

# port_free PORT…: until nothing listens on HOST:PORT, at most 10 s each.
port_free() {
	local p
	for p in "$@"; do
		for _ in $(seq 100); do
			(exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null || continue 2
			sleep 0.1
		done
		echo "${0##*/}: $HOST:$p is taken by something else" >&2
		return 1
	done
}
