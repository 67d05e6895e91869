# helpers.bash - shared set-up for the bats end-to-end tests (`load helpers`).
#
# Daemons are started directly in the background (never through a shell
# function running in the background, so $! is the daemon's own PID), with fd
# 3 closed so bats does not wait for them, and with --ready-file/--pidfile.
# They are stopped by PID: TERM, a bounded wait, then KILL; a clean stop is
# exit status 0.  Every client call goes through `timeout`.
#
#   hs_tmpdir                    make $HS_T, a short per-file directory under
#                                /tmp (Unix socket paths are limited to 108
#                                bytes, $BATS_FILE_TMPDIR is too long)
#   hs_daemon_start NAME BIN ARG...
#                                start BIN ARG... --ready-file $HS_T/NAME.ready
#                                --pidfile $HS_T/NAME.pid, stderr to
#                                $HS_T/NAME.err; wait until ready
#   hs_daemon_stop NAME          TERM, wait, KILL; fails unless it exited 0
#                                (a daemon started by another process, e.g.
#                                in a failed test, is stopped but its status
#                                cannot be known: stop daemons in the same
#                                test or setup_file/teardown_file pair)
#   hs_daemon_kill9 NAME         SIGKILL and reap
#   hs_daemon_wait_exit NAME S   wait up to S seconds for it to exit by itself;
#                                sets HS_EXIT to its status
#   peer_start NAME [ARG...]     hs-peer on unix:$HS_T/NAME.sock with data in
#                                $HS_T/NAME.d; sets PEER_ADDR
#   ptool ARG...                 hs-ptool under timeout ($HS_TOOL_TIMEOUT s)

bats_require_minimum_version 1.5.0

: "${HS_BUILD:?HS_BUILD must name the build directory (make B=... sets it in make test)}"
HS_BIN=$HS_BUILD/bin
HS_TOOLS=$HS_BUILD/test
: "${HS_TOOL_TIMEOUT:=60}"
: "${HS_READY_TIMEOUT:=20}"
: "${HS_STOP_TIMEOUT:=15}"

hs_tmpdir() {
	HS_T=$(mktemp -d /tmp/hs.XXXXXX)
	export HS_T
}

hs_tmpdir_remove() {
	[ -n "${HS_T:-}" ] && [ -d "$HS_T" ] && rm -rf "$HS_T"
	return 0
}

# hs_s3_start: start the local S3 rig (test/s3/start: s3rver behind the
# SigV4-checking proxy) in $HS_T/s3 and export S3_ADDR, the proxy's
# HOST:PORT.  Without node or test/s3/node_modules, S3_ADDR is empty and
# S3_NONE says why (the S3 tests skip with it); a rig that is installed but
# does not start fails (1), never a silent skip.  hs_s3_stop stops it.
hs_s3_start() {
	local top
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	S3_ADDR= S3_NONE=
	if ! command -v node >/dev/null 2>&1; then
		S3_NONE="node is not installed (./bootstrap deps installs it)"
	elif ! [ -d "$top/test/s3/node_modules/s3rver" ]; then
		S3_NONE="test/s3/node_modules missing: run npm ci --prefix test/s3 (./bootstrap test does)"
	else
		S3_ADDR=$("$top/test/s3/start" "$HS_T/s3") || return 1
	fi
	export S3_ADDR S3_NONE
}

hs_s3_stop() {
	[ -z "${S3_ADDR:-}" ] || "$(dirname "${BASH_SOURCE[0]}")/../s3/start" --stop "$HS_T/s3"
}

# The state of a process from /proc (R, S, Z, ...), empty if it is gone.
hs_proc_state() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*) }
	echo "${s%% *}"
}

hs_alive() {
	local st
	st=$(hs_proc_state "$1")
	[ -n "$st" ] && [ "$st" != Z ]
}

hs_daemon_start() {
	local name=$1 bin=$2 pid i deadline
	shift 2
	rm -f "$HS_T/$name.ready" "$HS_T/$name.pid"
	"$bin" "$@" --ready-file "$HS_T/$name.ready" --pidfile "$HS_T/$name.pid" \
		>>"$HS_T/$name.out" 2>>"$HS_T/$name.err" 3>&- &
	pid=$!
	# The starting shell is the only one that can reap it and learn its
	# exit status (bats runs each test in its own process).
	echo "$pid $BASHPID" >"$HS_T/$name.bgpid"
	deadline=$((SECONDS + HS_READY_TIMEOUT))
	while ! [ -s "$HS_T/$name.ready" ]; do
		if ! hs_alive "$pid"; then
			i=0
			wait "$pid" 2>/dev/null || i=$?
			echo "# $name exited with status $i before it was ready; its stderr:" >&3
			sed 's/^/#   /' "$HS_T/$name.err" >&3
			rm -f "$HS_T/$name.bgpid"
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "# $name not ready after ${HS_READY_TIMEOUT}s; its stderr:" >&3
			sed 's/^/#   /' "$HS_T/$name.err" >&3
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null || true
			rm -f "$HS_T/$name.bgpid"
			return 1
		fi
		sleep 0.02
	done
	i=$(cat "$HS_T/$name.pid" 2>/dev/null)
	if [ "$i" != "$pid" ]; then
		echo "# $name: pidfile says '$i', started $pid" >&3
		return 1
	fi
	return 0
}

hs_daemon_pid() {
	local pid starter
	read -r pid starter <"$HS_T/$1.bgpid"
	echo "$pid"
}

# Wait up to $2 seconds for daemon $1 to exit on its own; HS_EXIT gets its
# exit status (128+N if killed by signal N), or "unknown" when this shell did
# not start it (e.g. teardown_file cleaning up after a failed test).
# Returns 1 on timeout.
hs_daemon_wait_exit() {
	local pid starter deadline
	read -r pid starter <"$HS_T/$1.bgpid"
	deadline=$((SECONDS + $2))
	while hs_alive "$pid"; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.05
	done
	HS_EXIT=0
	if [ "$starter" = "$BASHPID" ]; then
		wait "$pid" 2>/dev/null || HS_EXIT=$?
	else
		HS_EXIT=unknown
	fi
	rm -f "$HS_T/$1.bgpid"
	return 0
}

hs_daemon_stop() {
	local name=$1 pid
	[ -f "$HS_T/$name.bgpid" ] || return 0
	pid=$(hs_daemon_pid "$name")
	kill -TERM "$pid" 2>/dev/null
	if ! hs_daemon_wait_exit "$name" "$HS_STOP_TIMEOUT"; then
		echo "# $name did not stop within ${HS_STOP_TIMEOUT}s of SIGTERM; killing it" >&3
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
		rm -f "$HS_T/$name.bgpid"
		return 1
	fi
	if [ "$HS_EXIT" = unknown ]; then
		echo "# $name stopped; exit status unknown (started by another process)" >&3
		return 0
	fi
	if [ "$HS_EXIT" -ne 0 ]; then
		echo "# $name exited with status $HS_EXIT after SIGTERM; its stderr:" >&3
		tail -n 20 "$HS_T/$name.err" | sed 's/^/#   /' >&3
		return 1
	fi
	if [ -e "$HS_T/$name.pid" ]; then
		echo "# $name left its pidfile behind" >&3
		return 1
	fi
	return 0
}

hs_daemon_kill9() {
	local pid
	pid=$(hs_daemon_pid "$1")
	kill -KILL "$pid" 2>/dev/null
	hs_daemon_wait_exit "$1" 10
}

# serve_start [FLAGS...]: start hs-serve as daemon "serve" with its data in
# $HS_T/serve.d (spawning its own peers) on unix:$HS_T/s.sock, and point
# the clients there through HS_ADDR.
serve_start() {
	hs_daemon_start serve "$HS_BIN/hs-serve" --data "$HS_T/serve.d" \
		--listen "unix:$HS_T/s.sock" "$@" || return 1
	HS_ADDR=unix:$HS_T/s.sock
	export HS_ADDR
}

peer_start() {
	local name=$1
	shift
	hs_daemon_start "$name" "$HS_BIN/hs-peer" --data "$HS_T/$name.d" \
		--listen "unix:$HS_T/$name.sock" "$@" || return 1
	PEER_ADDR=$(cat "$HS_T/$name.ready")
	export PEER_ADDR
}

ptool() {
	timeout "$HS_TOOL_TIMEOUT" "$HS_TOOLS/hs-ptool" "$@"
}

# Print a file's last lines to the TAP stream, for failures.
hs_show() {
	echo "# --- $1:" >&3
	tail -n "${2:-20}" "$1" | sed 's/^/#   /' >&3
}

# check_acks NAME ACKS: read log 1 of peer NAME in full (ignoring the released
# point: the writer never released) and check that every LSN of every
# "FIRST LAST" line of ACKS is there with the payload hs-ptool generated for
# it ("<lsn>:" then letters, 100 bytes).  Prints "acked N missing M bad B".
check_acks() {
	local max
	max=$(ptool -a "$PEER_ADDR" meta --log 1 | sed -n 's/^max_lsn=//p')
	[ -n "$max" ] && [ "$max" != 0 ] || { echo "no records at all"; return 1; }
	ptool -a "$PEER_ADDR" read --log 1 --ignore-released --until "$max" \
		>"$HS_T/$1.read" || return 1
	awk -F'\t' '
		FNR == NR {
			if ($1 ~ /^GAP/) next
			if (index($2, $1 ":") == 1 && length($2) == 100) ok[$1] = 1
			else bad++
			next
		}
		{
			split($0, r, " "); split(r[1], a, "n"); split(r[2], b, "n")
			for (i = a[2]; i <= b[2]; i++) {
				acked++
				if (!((a[1] "n" i) in ok)) missing++
			}
		}
		END { printf "acked %d missing %d bad %d\n", acked, missing, bad }
	' "$HS_T/$1.read" "$2"
}
