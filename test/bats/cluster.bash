# cluster.bash - a replicated cluster for the fault scenarios (52-scen-*),
# loaded after helpers.bash (`load helpers; load cluster`).
#
# K external hs-peer processes (daemons p1..pK, --node-id 1..K, data in
# $HS_T/pI.d) and one or more hs-serve (daemons named by the caller, data in
# $HS_T/NAME.d, listening on unix:$HS_T/NAME.sock) given every peer with
# --peer and the replication factor $CL_R.  Peers listen on Unix sockets, or,
# after cl_netns_setup, on TCP inside their own network namespaces (then the
# links can be cut).  The workload is test/workload/: appenders (hs-wl,
# histories $HS_T/wW), final readers (hs-cat, $HS_T/rN) and the checker.
#
#   cl_peers_start K             start p1..pK (sets CL_NPEERS)
#   cl_peer_start I [ARG...]     start (or restart) peer I on its old data
#   cl_peer_start_fiu I          the same under `fiu-run -x -f $HS_T/fcI`
#                                (faults enabled later with fiu-ctrl)
#   cl_peer_addr I               its address
#   cl_serve_start NAME [ARG...] hs-serve NAME over all peers, --replication
#                                $CL_R (default 2); the address is
#                                $(cl_addr NAME)
#   cl_kill9 NAME | cl_pause NAME | cl_resume NAME | cl_stop NAME
#                                faults on any daemon; cl_stop asserts a clean
#                                exit (SIGTERM, bounded wait); cl_kill9 fails
#                                if NAME had already died on its own
#   cl_alive [NAME...]           none of them (default: all) died on its own
#   cl_append_start W ADDR [ARG...]
#                                append-client writer W on stream $CL_STREAM at
#                                $CL_RATE payloads/s (until SIGTERM, bounded by
#                                `timeout`), history $HS_T/wW
#   cl_append_stop               SIGTERM every appender, wait, assert exit 0
#   cl_follow_start N ADDR       a follower (tail-client, hs-tail --from head
#                                -F), history $HS_T/tN, a partial reader
#   cl_follow_stop               SIGTERM the followers, assert exit 0
#   cl_acks [W...]               acknowledged payloads so far (all writers)
#   cl_wait_acks N SECS [W...]   wait until N more payloads are acknowledged
#                                than when called (fails after SECS)
#   cl_check ADDR [MIN_OK]       cl_alive, two final readers through ADDR,
#                                the checker over every history (appenders
#                                wN, partial readers tN, earlier cl_check's
#                                final readers among them); fails on any
#                                anomaly or fewer than MIN_OK acks; JSON in
#                                $HS_T/check.json
#   cl_netns_setup K             namespaces: a bridge, the sequencer's and one
#                                per peer (10.77.0.I), or return 1 if refused
#   cl_netns_member X HOST       one more namespace ${CL_NS}X at 10.77.0.HOST
#                                (a second sequencer: CL_SNS=X cl_serve_start)
#   cl_link_down I | cl_link_up I
#                                cut / heal the only link of peer I (or of
#                                namespace suffix I: s is the sequencers')
#   cl_cleanup                   SIGCONT and stop every daemon and appender,
#                                delete the namespaces (for teardown)
#   cl_need_r R [MIN]            use R (or MIN while hs-serve refuses R), else
#                                skip the test
#   cl_setup / cl_teardown       per-test set-up and clean-up (stderr tails on
#                                failure)
#   cl_check_fresh NAME [MIN_OK] a new hs-serve NAME takes the stream over (one
#                                append, writer 99), then cl_check through it
#   cl_epochs W / cl_ok_lines W  epochs writer W was acknowledged in / its acks
#   cl_busy_order [SECS]         running peers, busiest (copyset members) first
#
# Workload sizes: CL_RATE payloads/s per appender (250 by default) keeps
# each scenario at a few thousand records and well inside CI's budget.
#
# Every client runs under `timeout`; every wait has a deadline.

: "${CL_R:=2}"
: "${CL_STREAM:=wl}"
: "${CL_RATE:=250}"
: "${CL_APPEND_MAX:=90}"      # seconds an appender may live at most
CL_WL=$BATS_TEST_DIRNAME/../workload
CL_NPEERS=0
CL_NS=                         # namespace prefix once cl_netns_setup ran
CL_PORT=7000

cl_addr() {
	echo "unix:$HS_T/$1.sock"
}

cl_peer_addr() {
	if [ -n "$CL_NS" ]; then
		echo "10.77.0.$1:$CL_PORT"
	else
		echo "unix:$HS_T/p$1.sock"
	fi
}

# cl_peer_argv I: the hs-peer command line of peer I (in CL_ARGV).
cl_peer_argv() {
	local i=$1
	CL_ARGV=()
	[ -n "$CL_NS" ] && CL_ARGV=(ip netns exec "${CL_NS}$i")
	CL_ARGV+=("$HS_BIN/hs-peer" --data "$HS_T/p$i.d" --listen "$(cl_peer_addr "$i")"
		--node-id "$i")
}

cl_peer_start() {
	local i=$1
	shift
	cl_peer_argv "$i"
	hs_daemon_start "p$i" "${CL_ARGV[@]}" "$@"
}

cl_peer_start_fiu() {
	local i=$1
	cl_peer_argv "$i"
	rm -f "$HS_T/fc$i"*
	hs_daemon_start "p$i" fiu-run -x -f "$HS_T/fc$i" "${CL_ARGV[@]}"
}

cl_peers_start() {
	local i
	CL_NPEERS=$1
	for i in $(seq "$CL_NPEERS"); do
		cl_peer_start "$i" || return 1
	done
}

# cl_serve_argv NAME ARG...: hs-serve NAME's command line (in CL_ARGV).
cl_serve_argv() {
	local name=$1 i
	shift
	CL_ARGV=()
	[ -n "$CL_NS" ] && CL_ARGV=(ip netns exec "${CL_NS}${CL_SNS:-s}")
	CL_ARGV+=("$HS_BIN/hs-serve" --data "$HS_T/$name.d" --listen "$(cl_addr "$name")"
		--replication "$CL_R")
	for i in $(seq "$CL_NPEERS"); do
		CL_ARGV+=(--peer "$(cl_peer_addr "$i")")
	done
	CL_ARGV+=("$@")
}

cl_serve_start() {
	local name=$1
	shift
	cl_serve_argv "$name" "$@"
	hs_daemon_start "$name" "${CL_ARGV[@]}"
}

cl_kill9() {
	[ -f "$HS_T/$1.bgpid" ] || return 0
	cl_alive "$1" || return 1
	kill -CONT "$(hs_daemon_pid "$1")" 2>/dev/null
	hs_daemon_kill9 "$1"
}

# cl_alive [NAME...]: every daemon named (default: every daemon started and
# not stopped or killed by the test) is still running; one that died on its
# own is a failure, with its exit status and stderr.
cl_alive() {
	local f name st=0
	if [ $# -eq 0 ]; then
		for f in "$HS_T"/*.bgpid; do
			[ -f "$f" ] && set -- "$@" "$(basename "$f" .bgpid)"
		done
	fi
	for name in "$@"; do
		[ -f "$HS_T/$name.bgpid" ] || continue
		hs_alive "$(hs_daemon_pid "$name")" && continue
		hs_daemon_wait_exit "$name" 1 || true
		echo "# $name died on its own (status $HS_EXIT); its stderr:" >&3
		tail -n 20 "$HS_T/$name.err" | sed 's/^/#   /' >&3
		st=1
	done
	return "$st"
}

cl_pause() {
	kill -STOP "$(hs_daemon_pid "$1")"
}

cl_resume() {
	kill -CONT "$(hs_daemon_pid "$1")"
}

cl_stop() {
	hs_daemon_stop "$1"
}

cl_running() {
	[ -f "$HS_T/$1.bgpid" ] && hs_alive "$(hs_daemon_pid "$1")"
}

cl_append_start() {
	local w=$1 addr=$2
	shift 2
	HS_ADDR=$addr timeout -k 5 "$CL_APPEND_MAX" "$CL_WL/append-client" -t 2000 \
		--stream "$CL_STREAM" --writer "$w" --count 100000000 --rate "$CL_RATE" "$@" \
		>"$HS_T/w$w" 2>"$HS_T/w$w.err" 3>&- &
	echo "$! $w" >>"$HS_T/appenders"
}

# cl_reap LIST REPORT: SIGTERM every "pid n" of $HS_T/LIST, wait for each
# and call REPORT n status (it says what matters and returns 1 for a
# failure); empties LIST; 1 if any REPORT failed.  Status 127: not a child
# of this shell (cl_cleanup in another process) - not a failure.
cl_reap() {
	local list=$HS_T/$1 pid n s st=0
	[ -s "$list" ] || return 0
	while read -r pid n; do
		kill -TERM "$pid" 2>/dev/null || true
	done <"$list"
	while read -r pid n; do
		s=0
		wait "$pid" 2>/dev/null || s=$?
		[ "$s" -eq 127 ] && s=0
		"$2" "$n" "$s" || st=1
	done <"$list"
	: >"$list"
	return "$st"
}

cl_append_report() {
	local st=0
	if [ "$2" -ne 0 ]; then
		echo "# appender w$1 exited with status $2" >&3
		st=1
	fi
	[ -s "$HS_T/w$1.err" ] && echo "# $(tail -n 1 "$HS_T/w$1.err")" >&3
	return "$st"
}

cl_append_stop() {
	cl_reap appenders cl_append_report
}

# cl_follow_start N ADDR: a follower (test/workload/tail-client: hs-tail
# --from head -F) on $CL_STREAM through ADDR, history $HS_T/tN (a partial
# reader for the checker; use N >= 1000, apart from the nemesis' readers).
cl_follow_start() {
	HS_ADDR=$2 timeout -k 5 "$CL_APPEND_MAX" "$CL_WL/tail-client" --from head -F -t 2s \
		"$CL_STREAM" >"$HS_T/t$1" 2>"$HS_T/t$1.err" 3>&- &
	echo "$! $1" >>"$HS_T/followers"
}

# cl_follow_stop: SIGTERM the followers, wait; any exit status but 0 fails.
cl_follow_report() {
	local st=0
	if [ "$2" -ne 0 ]; then
		echo "# follower t$1 exited with status $2" >&3
		hs_show "$HS_T/t$1.err"
		st=1
	fi
	echo "# follower t$1: $(grep -c ' DATA ' "$HS_T/t$1") records" >&3
	return "$st"
}

cl_follow_stop() {
	cl_reap followers cl_follow_report
}

# cl_acks [W...]: acknowledged payloads so far.
cl_acks() {
	local f=() w
	if [ $# -eq 0 ]; then
		for w in "$HS_T"/w[0-9]*; do
			case $w in *.err) continue ;; esac
			f+=("$w")
		done
	else
		for w in "$@"; do f+=("$HS_T/w$w"); done
	fi
	[ ${#f[@]} -gt 0 ] || { echo 0; return 0; }
	cat "${f[@]}" 2>/dev/null | grep -c '^ok ' || true
}

cl_wait_acks() {
	local n=$1 secs=$2 base deadline
	shift 2
	base=$(cl_acks "$@")
	deadline=$((SECONDS + secs))
	while [ "$(cl_acks "$@")" -lt $((base + n)) ]; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "# fewer than $n new acks within ${secs}s (had $base, now $(cl_acks "$@"))" >&3
			return 1
		fi
		sleep 0.1
	done
}

# cl_check ADDR [MIN_OK]: final reads and the checker.
cl_check() {
	local addr=$1 min=${2:-1} args=() w r st
	cl_alive || return 1
	# The stream really has the replication factor under test (when this
	# hs-serve answers stream info itself: not after a redirect).
	r=$(timeout 10 "$HS_BIN/hs-admin" -a "$addr" stream info "$CL_STREAM" 2>/dev/null |
		awk '$1 == "replication" { print $2 }')
	if [ -n "$r" ] && [ "$r" != "$CL_R" ]; then
		echo "# stream $CL_STREAM has replication '$r', the test wants $CL_R" >&3
		return 1
	fi
	for w in "$HS_T"/w[0-9]*; do
		case $w in *.err) continue ;; esac
		args+=(-w "$w")
	done
	# The final readers of an earlier cl_check become partial readers: a
	# later read must agree with them at every LSN (no `divergent').
	for r in 1 2; do
		[ -f "$HS_T/r$r" ] || continue
		w=$(($(cat "$HS_T/tn" 2>/dev/null || echo 100) + 1))
		echo "$w" >"$HS_T/tn"
		mv "$HS_T/r$r" "$HS_T/t$w"
	done
	for r in 1 2; do
		st=0
		HS_ADDR=$addr HS_WL_TIMEOUT=30 "$CL_WL/read-client" -t 10s "$CL_STREAM" \
			>"$HS_T/r$r" 2>"$HS_T/r$r.err" || st=$?
		if [ "$st" -ne 0 ]; then
			echo "# final reader $r exited with status $st" >&3
			hs_show "$HS_T/r$r.err"
			return 1
		fi
		args+=(-r "$HS_T/r$r")
	done
	# Readers that ran during the faults: every check but `lost'.
	for r in "$HS_T"/t[0-9]*; do
		case $r in *.err) continue ;; esac
		[ -f "$r" ] && args+=(-t "$r")
	done
	st=0
	timeout 60 "$CL_WL/check" "${args[@]}" >"$HS_T/check.json" || st=$?
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
bad = {c: v for c, v in d["anomalies"].items() if v["count"]}
print("# checker: valid=%s stats=%s" % (d["valid"], d["stats"]))
for c, v in bad.items():
    print("# ANOMALY %s: %s" % (c, json.dumps(v)))
' "$HS_T/check.json" >&3
	[ "$st" -eq 0 ] || return 1
	st=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stats"]["ok"])' \
		"$HS_T/check.json")
	if [ "$st" -lt "$min" ]; then
		echo "# only $st acknowledged payloads, expected at least $min" >&3
		return 1
	fi
}

# cl_busy_order [SECS]: the running peers, those whose WAL grew the most
# over SECS (default 0.5) first - the current copysets' members (a stream
# keeps its copyset for 1 MiB of runs, i.e. through most of a scenario).
cl_busy_order() {
	local i g0=() g
	for i in $(seq "$CL_NPEERS"); do
		g0[i]=$(cat "$HS_T/p$i.d"/*.log 2>/dev/null | wc -c)
	done
	sleep "${1:-0.5}"
	for i in $(seq "$CL_NPEERS"); do
		cl_running "p$i" || continue
		g=$(cat "$HS_T/p$i.d"/*.log 2>/dev/null | wc -c)
		echo "$((g - g0[i])) $i"
	done | sort -k1,1nr -k2,2n | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $2 } END { print "" }'
}

# cl_epochs W: the distinct epochs writer W got acknowledgements in.
cl_epochs() {
	sed -n 's/^ok e\([0-9]*\)n.*/\1/p' "$HS_T/w$1" | sort -un | wc -l
}

# ---- network namespaces ----------------------------------------------------
# Layout: namespace ${CL_NS}br holds bridge br0 and one veth end per member;
# the other end is eth0 of ${CL_NS}s (the sequencers, 10.77.0.100) or of
# ${CL_NS}I (peer I, 10.77.0.I, listening on TCP port $CL_PORT).  Clients
# reach hs-serve by its Unix socket path, which is not scoped by namespace.

cl_netns_member() { # NS-SUFFIX HOST
	local ns=${CL_NS}$1
	ip netns add "$ns" || return 1
	echo "$ns" >>"$HS_T/netns"
	ip link add "v$1" netns "${CL_NS}br" type veth peer name eth0 netns "$ns" || return 1
	ip -n "$ns" addr add "10.77.0.$2/24" dev eth0 || return 1
	ip -n "$ns" link set lo up || return 1
	ip -n "$ns" link set eth0 up || return 1
	ip -n "${CL_NS}br" link set "v$1" master br0 || return 1
	ip -n "${CL_NS}br" link set "v$1" up
}

cl_netns_setup() {
	local i
	# A prefix unique to this file's directory: files run in parallel.
	CL_NS=hs$(basename "$HS_T" | tr -dc 'a-zA-Z0-9')
	ip netns add "${CL_NS}br" 2>/dev/null || { CL_NS=; return 1; }
	echo "${CL_NS}br" >>"$HS_T/netns"
	ip -n "${CL_NS}br" link add br0 type bridge &&
		ip -n "${CL_NS}br" link set br0 up &&
		cl_netns_member s 100 || { cl_netns_teardown; return 1; }
	for i in $(seq "$1"); do
		cl_netns_member "$i" "$i" || { cl_netns_teardown; return 1; }
	done
}

cl_link_down() {
	ip -n "${CL_NS}br" link set "v$1" down
}

cl_link_up() {
	ip -n "${CL_NS}br" link set "v$1" up
}

cl_netns_teardown() {
	local ns
	[ -f "$HS_T/netns" ] || return 0
	while read -r ns; do
		ip netns del "$ns" 2>/dev/null || true
	done <"$HS_T/netns"
	rm -f "$HS_T/netns"
	CL_NS=
}

cl_cleanup() {
	local f name
	[ -n "${HS_T:-}" ] && [ -d "$HS_T" ] || return 0
	cl_append_stop >/dev/null 2>&1 || true
	cl_follow_stop >/dev/null 2>&1 || true
	for f in "$HS_T"/*.bgpid; do
		[ -f "$f" ] || continue
		name=$(basename "$f" .bgpid)
		kill -CONT "$(hs_daemon_pid "$name")" 2>/dev/null || true
	done
	# Sequencers first (they would only log their peers going away).
	for f in "$HS_T"/*.bgpid; do
		[ -f "$f" ] || continue
		name=$(basename "$f" .bgpid)
		case $name in p[0-9]*) continue ;; esac
		hs_daemon_stop "$name" || true
	done
	for f in "$HS_T"/*.bgpid; do
		[ -f "$f" ] || continue
		hs_daemon_stop "$(basename "$f" .bgpid)" || true
	done
	cl_netns_teardown
}

# ---- per-test set-up -------------------------------------------------------

# cl_need_r R [MIN]: use replication R, or MIN (default R) when this hs-serve
# refuses R; skip the test when it refuses MIN too.  Sets CL_R.
cl_need_r() {
	local r=$1 min=${2:-$1}
	if "$HS_BIN/hs-serve" --replication "$r" --version >/dev/null 2>&1; then
		CL_R=$r
	elif [ "$min" != "$r" ] && "$HS_BIN/hs-serve" --replication "$min" --version >/dev/null 2>&1; then
		CL_R=$min
		echo "# hs-serve refuses --replication $r: running with R=$min" >&3
	else
		skip "needs R>1 copysets and waves in hs-serve (issue 4): --replication $r is refused"
	fi
}

cl_setup() {
	hs_tmpdir
	: >"$HS_T/appenders"
}

# cl_teardown: on failure, the last lines of every daemon's stderr; then
# stop everything and remove the directory.
cl_teardown() {
	local f
	[ -n "${HS_T:-}" ] && [ -d "$HS_T" ] || return 0
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -z "${BATS_TEST_SKIPPED:-}" ]; then
		for f in "$HS_T"/*.err; do
			[ -s "$f" ] && hs_show "$f" 15
		done
	fi
	cl_cleanup
	# HS_SCEN_KEEP=DIR keeps a failed test's directory (histories, stderr,
	# data) as DIR/<its name>.
	if [ -n "${HS_SCEN_KEEP:-}" ] && [ -z "${BATS_TEST_COMPLETED:-}" ] &&
		[ -z "${BATS_TEST_SKIPPED:-}" ]; then
		mkdir -p "$HS_SCEN_KEEP" && cp -a "$HS_T" "$HS_SCEN_KEEP/" &&
			echo "# kept in $HS_SCEN_KEEP/$(basename "$HS_T")" >&3
	fi
	hs_tmpdir_remove
}

# cl_check_fresh NAME [MIN_OK]: start a new hs-serve NAME over the peers,
# append one marker payload through it (writer 99: the append makes it take
# the stream over, recovering every earlier epoch), then cl_check through it.
cl_check_fresh() {
	local name=$1
	cl_serve_start "$name" || return 1
	HS_ADDR=$(cl_addr "$name") timeout -k 5 40 "$CL_WL/append-client" -t 30000 \
		--stream "$CL_STREAM" --writer 99 --count 1 >"$HS_T/w99" 2>"$HS_T/w99.err" 3>&-
	if ! grep -q '^ok ' "$HS_T/w99"; then
		echo "# the marker append through a fresh $name failed" >&3
		hs_show "$HS_T/w99.err"
		return 1
	fi
	cl_check "$(cl_addr "$name")" "${2:-1}"
}

# cl_ok_lines W: the number of `ok` lines in writer W's history.
cl_ok_lines() {
	grep -c '^ok ' "$HS_T/w$1" 2>/dev/null || true
}
