#!/usr/bin/env bats
# 26-follow-memory: caught-up followers (hs-tail, subscriptions) are served
# from hs-serve's in-memory window of released runs (cmd/hs-serve.c,
# "FOLLOWING FROM MEMORY").  Every record exactly once and in order while
# appends run at full rate; a stopped follower falls back to the peer and
# comes back, still exactly once and in order; hs-serve's memory stays
# bounded while a stopped follower lags 2,000,000 records behind; the STATS
# counters show which path served.  "Exactly once, in order" is checked by
# comparing the follower's '%l %p' lines with hs-cat's of the same stream.

load helpers

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	hs_tmpdir
	serve_start
	export HS_T HS_ADDR
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	hs_daemon_stop serve
	local st=$?
	hs_tmpdir_remove
	return $st
}

teardown() {
	# A follower left stopped by a failed test must not outlive it.
	if [ -n "${TP:-}" ]; then
		kill -CONT "$TP" 2>/dev/null || true
		kill -TERM "$TP" 2>/dev/null || true
		wait "$TP" 2>/dev/null || true
	fi
}

admin() { timeout 20 "$HS_BIN/hs-admin" "$@"; }
append() { timeout 120 "$HS_BIN/hs-append" "$@"; }

# stat NAME: a serve counter from hs-admin stats.
stat() {
	admin stats | awk -v k="$1" '$1 == "serve" && $2 == k { print $3 }'
}

# follow NAME ARG...: hs-tail ARG... in the background printing '%l %p'
# lines to $HS_T/NAME.out; sets TP to its PID (hs-tail itself, so that
# SIGSTOP stops the reader).
follow() {
	local name=$1
	shift
	"$HS_BIN/hs-tail" --format '%l %p\n' "$@" >"$HS_T/$name.out" 2>"$HS_T/$name.err" 3>&- &
	TP=$!
}

# wait_lines FILE N SECONDS: until FILE has N lines.
wait_lines() {
	local deadline=$((SECONDS + $3))
	while [ "$(wc -l <"$1")" -lt "$2" ]; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "# $1: $(wc -l <"$1") lines, expected $2" >&3
			return 1
		fi
		sleep 0.1
	done
}

# same_as_cat STREAM FILE: FILE holds exactly hs-cat's records of STREAM.
same_as_cat() {
	timeout 60 "$HS_BIN/hs-cat" --format '%l %p\n' "$1" >"$HS_T/$1.cat"
	if ! cmp "$HS_T/$1.cat" "$2"; then
		echo "# $2 differs from hs-cat $1 ($(wc -l <"$2") vs $(wc -l <"$HS_T/$1.cat") lines)" >&3
		diff "$HS_T/$1.cat" "$2" | head -5 | sed 's/^/#   /' >&3
		return 1
	fi
}

stop_follower() {
	kill -TERM "$TP"
	wait "$TP" || true
	TP=
}

@test "a follower gets every record once, in order, from memory, while two appenders run flat out" {
	local d0 d1
	admin stream create fm1
	d0=$(stat follow_mem_delivered)
	follow fm1 fm1
	sleep 0.3
	seq -f 'a%.0f' 300000 | append fm1 &
	local a1=$!
	seq -f 'b%.0f' 300000 | append fm1
	wait "$a1"
	wait_lines "$HS_T/fm1.out" 600000 60
	stop_follower
	same_as_cat fm1 "$HS_T/fm1.out"
	d1=$(stat follow_mem_delivered)
	echo "# from memory: $((d1 - d0)) of 600000 records" >&3
	[ "$((d1 - d0))" -gt 0 ]
}

@test "a follower from the head catches up through the peer, then switches to memory" {
	local s0 s1 d0 d1
	admin stream create fm2
	seq 200000 | append fm2
	s0=$(stat follow_mem_switches)
	follow fm2 --from head fm2
	wait_lines "$HS_T/fm2.out" 200000 60
	d0=$(stat follow_mem_delivered)
	seq 200001 250000 | append fm2
	wait_lines "$HS_T/fm2.out" 250000 60
	stop_follower
	same_as_cat fm2 "$HS_T/fm2.out"
	s1=$(stat follow_mem_switches)
	d1=$(stat follow_mem_delivered)
	[ "$s1" -gt "$s0" ]
	[ "$((d1 - d0))" -ge 50000 ]
}

@test "a stopped follower falls back to the peer and comes back: still once, in order" {
	local f0 f1 s0 s1
	admin stream create fm3
	f0=$(stat follow_peer_fallbacks)
	s0=$(stat follow_mem_switches)
	follow fm3 fm3
	sleep 0.3
	seq -f '%0100.0f' 100000 | append fm3
	wait_lines "$HS_T/fm3.out" 100000 60
	kill -STOP "$TP"
	# 60 MB: far more than the stream's window (16 MiB).
	seq -f '%0100.0f' 100001 700000 | append fm3
	sleep 1
	kill -CONT "$TP"
	wait_lines "$HS_T/fm3.out" 700000 60
	# And back in memory: new records go out from there.
	seq -f '%0100.0f' 700001 710000 | append fm3
	wait_lines "$HS_T/fm3.out" 710000 60
	stop_follower
	same_as_cat fm3 "$HS_T/fm3.out"
	f1=$(stat follow_peer_fallbacks)
	s1=$(stat follow_mem_switches)
	echo "# peer fallbacks +$((f1 - f0)), switches to memory +$((s1 - s0))" >&3
	[ "$f1" -gt "$f0" ]
	[ "$s1" -gt "$s0" ]
}

@test "hs-serve memory stays bounded while a stopped follower lags 2,000,000 records behind" {
	local pid rss max=0 limit=$((160 * 1024))
	pid=$(hs_daemon_pid serve)
	admin stream create fm4
	follow fm4 fm4
	sleep 0.3
	echo first | append fm4
	wait_lines "$HS_T/fm4.out" 1 20
	kill -STOP "$TP"
	# 2,000,000 records of 100 bytes: 200 MB behind the stopped reader.
	seq -f '%0100.0f' 2000000 | append fm4 &
	local ap=$!
	while hs_alive "$ap"; do
		rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
		[ "$rss" -gt "$max" ] && max=$rss
		sleep 0.2
	done
	wait "$ap"
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
	[ "$rss" -gt "$max" ] && max=$rss
	echo "# hs-serve VmRSS peak $((max / 1024)) MiB with the reader 200 MB behind" \
		"(window $(($(stat follow_window_bytes) / 1048576)) MiB)" >&3
	[ "$max" -lt "$limit" ]
	kill -CONT "$TP"
	wait_lines "$HS_T/fm4.out" 2000001 120
	stop_follower
	same_as_cat fm4 "$HS_T/fm4.out"
	[ "$(stat follow_window_bytes)" -eq 0 ] # no followers: no window
}

@test "a subscription session is served from memory and keeps its ack window" {
	local d0 d1
	admin stream create fm5
	admin sub create fm5s --stream fm5
	d0=$(stat follow_mem_delivered)
	follow fm5s --sub fm5s
	sleep 0.3
	seq 100000 | append fm5
	wait_lines "$HS_T/fm5s.out" 100000 60
	sleep 0.5 # its last ACK
	stop_follower
	same_as_cat fm5 "$HS_T/fm5s.out"
	d1=$(stat follow_mem_delivered)
	[ "$((d1 - d0))" -gt 0 ]
	# Everything was acknowledged: the checkpoint reaches the tail, and
	# a new session has nothing to redeliver.
	run admin sub info fm5s
	[ "$status" -eq 0 ]
	echo 100001 | append fm5
	run timeout 20 "$HS_BIN/hs-tail" --sub fm5s -c 1
	[ "$status" -eq 0 ]
	[ "$output" = 100001 ]
}
