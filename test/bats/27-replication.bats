#!/usr/bin/env bats
# 27-replication: hs-serve's sequencer with R > 1 (docs/replication.md §3,
# §4).  Every run goes to a copyset of R peers of its epoch's nodeset; the
# client is acknowledged once all R stored it; a lost peer costs a new wave
# on other peers; with fewer than R peers up nothing is acknowledged until
# one comes back.  Copies are counted on the peers themselves (hs-ptool
# read --ignore-released of each peer), and read back through hs-serve
# (whose reads merge the nodeset).

load helpers

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	hs_tmpdir
	HS_ADDR=unix:$HS_T/s.sock
	export HS_T HS_ADDR
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	local st=0 d
	for d in serve2 serve p1 p2 p3; do
		hs_daemon_stop $d || st=1
	done
	hs_tmpdir_remove
	return $st
}

admin() {
	timeout 30 "$HS_BIN/hs-admin" "$@"
}

app() {
	timeout 120 "$HS_BIN/hs-append" "$@"
}

# stream_stat STREAM KEY: a per-stream value of hs-admin stats.
stream_stat() {
	admin stats | awk -v s="stream/$1" -v k="$2" '$1 == s && $2 == k { print $3 }'
}

# copies ADDR... : for the log in $LOG, every record every listed peer holds,
# as "LSN<TAB>payload" lines (all epochs, released or not), the LSN as a
# sortable key (hs-ptool prints eEnN).
copies() {
	local a
	for a in "$@"; do
		ptool -a "$a" read --log "$LOG" --ignore-released --idle-exit 1s --format line
	done | awk -F '\t' -v OFS='\t' '{ split(substr($1, 2), x, "n"); $1 = sprintf("%010d%010d", x[1], x[2]); print }'
}

# check_copies R INPUT ADDR...: every LSN on exactly R of the peers, and the
# payloads in LSN order are INPUT's lines.
check_copies() {
	local r=$1 in=$2
	shift 2
	copies "$@" | LC_ALL=C sort -k1,1 -s >"$HS_T/copies"
	cut -f1 "$HS_T/copies" | uniq -c | awk -v r="$r" '$1 != r { bad++ } END { print "bad " bad+0 }' \
		>"$HS_T/copies.bad"
	[ "$(cat "$HS_T/copies.bad")" = "bad 0" ] || { cat "$HS_T/copies.bad"; return 1; }
	LC_ALL=C sort -k1,1 -u "$HS_T/copies" | cut -f2- >"$HS_T/copies.payload"
	cmp "$in" "$HS_T/copies.payload"
}

# cluster3: three external peers (node ids 1..3) and hs-serve --replication 2
# over them, unless running already (the tests below share them).
cluster3() {
	local i
	for i in 1 2 3; do
		[ -f "$HS_T/p$i.bgpid" ] || peer_start p$i --node-id $i || return 1
	done
	[ -f "$HS_T/serve.bgpid" ] && return 0
	serve_start --peer "unix:$HS_T/p1.sock" --peer "unix:$HS_T/p2.sock" \
		--peer "unix:$HS_T/p3.sock" --replication 2
}

# A slow writer: n lines (numbered from $3) in bursts of 5,000 with a pause.
slow_lines() {
	local n=$1 pause=$2 from=${3:-1} i
	for ((i = from; i < from + n; i += 5000)); do
		seq "$i" $((i + 4999))
		sleep "$pause"
	done
}

@test "--replication beyond the peers is a usage error" {
	run --separate-stderr timeout 5 "$HS_BIN/hs-serve" --data "$HS_T/x" --local-peers 2 \
		--replication 3
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"--replication 3 needs at least 3 peers"* ]]
	run timeout 5 "$HS_BIN/hs-serve" --data "$HS_T/x" --replication 33
	[ "$status" -eq 64 ]
}

@test "R=3 over 3 embedded peers: 100k records, every peer has every run, read back" {
	serve_start --local-peers 3 --replication 3
	seq 1 100000 | sed 's/$/ replicated/' >"$HS_T/in3"
	run -0 app -c r3 "$HS_T/in3"
	timeout 60 "$HS_BIN/hs-cat" r3 >"$HS_T/out3"
	cmp "$HS_T/in3" "$HS_T/out3"
	[ "$(stream_stat r3 replication)" = 3 ]
	[ "$(stream_stat r3 nodeset)" = 1,2,3 ]
	[ "$(stream_stat r3 lng)" = "$(( $(stream_stat r3 next_lsn) - 1 ))" ]
	LOG=$(stream_stat r3 log)
	check_copies 3 "$HS_T/in3" "unix:$HS_T/s.sock.p0" "unix:$HS_T/s.sock.p1" \
		"unix:$HS_T/s.sock.p2"
	hs_daemon_stop serve
}

@test "R=2 over 3 external peers: every record on exactly 2 peers" {
	cluster3
	run -0 admin cluster status --json
	seq 1 100000 | sed 's/^/two /' >"$HS_T/in2"
	run -0 app -c r2 "$HS_T/in2"
	[ "$(stream_stat r2 replication)" = 2 ]
	LOG=$(stream_stat r2 log)
	check_copies 2 "$HS_T/in2" "unix:$HS_T/p1.sock" "unix:$HS_T/p2.sock" "unix:$HS_T/p3.sock"
	# Read back through hs-serve, merging the nodeset.
	timeout 60 "$HS_BIN/hs-cat" r2 >"$HS_T/out2"
	cmp "$HS_T/in2" "$HS_T/out2"
	# The peers' own counters agree: 2 copies of each run.
	local runs sum=0 a
	runs=$(stream_stat r2 appends)
	for a in p1 p2 p3; do
		sum=$((sum + $(ptool -a "unix:$HS_T/$a.sock" stats | sed -n 's/^runs_stored //p')))
	done
	[ "$sum" -eq $((2 * runs)) ]
}

@test "R=2: kill -9 one of 3 peers under load; appends go on, every acked record is on 2 peers" {
	cluster3
	seq 1 100000 >"$HS_T/ink"
	( slow_lines 100000 0.1 | timeout 120 "$HS_BIN/hs-append" -c k2 >"$HS_T/k2.out" \
		2>"$HS_T/k2.err"; echo $? >"$HS_T/k2.rc" ) 3>&- &
	sleep 0.7
	hs_daemon_kill9 p2
	local deadline=$((SECONDS + 60))
	while ! [ -s "$HS_T/k2.rc" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	[ "$(cat "$HS_T/k2.rc")" = 0 ] || { cat "$HS_T/k2.err"; false; }
	LOG=$(stream_stat k2 log)
	[ "$(stream_stat k2 lng)" = "$(( $(stream_stat k2 next_lsn) - 1 ))" ]
	# Back with its data: the copies it took before the kill count too.
	peer_start p2 --node-id 2
	check_copies 2 "$HS_T/ink" "unix:$HS_T/p1.sock" "unix:$HS_T/p2.sock" "unix:$HS_T/p3.sock"
	timeout 60 "$HS_BIN/hs-cat" k2 >"$HS_T/outk"
	cmp "$HS_T/ink" "$HS_T/outk"
}

@test "R=2: a peer that stops answering (SIGSTOP) costs a new wave after the STORE timeout" {
	cluster3
	local i pid
	for i in 1 2 3 4 5 6; do
		run -0 app -c w$i <(echo w$i)
	done
	pid=$(hs_daemon_pid p1)
	kill -STOP "$pid"
	for i in 1 2 3 4 5 6; do
		( seq 1 2000 | timeout 30 "$HS_BIN/hs-append" w$i; echo $? >"$HS_T/w$i.rc" ) 3>&- &
	done
	local deadline=$((SECONDS + 40))
	for i in 1 2 3 4 5 6; do
		while ! [ -s "$HS_T/w$i.rc" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	done
	kill -CONT "$pid"
	for i in 1 2 3 4 5 6; do
		[ "$(cat "$HS_T/w$i.rc")" = 0 ]
		timeout 30 "$HS_BIN/hs-cat" w$i >"$HS_T/w$i.out"
		(echo w$i; seq 1 2000) | diff - "$HS_T/w$i.out" | head -5 >&3
		(echo w$i; seq 1 2000) | cmp - "$HS_T/w$i.out"
	done
	# Six streams, three peers, R=2: some copyset held p1.
	[ "$(admin stats | awk '$1 == "serve" && $2 == "store_timeouts" { print $3 }')" -ge 1 ]
	[ "$(admin stats | awk '$1 == "serve" && $2 == "store_waves" { print $3 }')" -ge 1 ]
}

@test "R=3 with a peer down: appends stall unacknowledged, and go on when it is back" {
	cluster3
	seq 1 1000 >"$HS_T/ins"
	run -0 admin stream create s3 --replication 3
	run -0 app s3 <(echo first)
	hs_daemon_kill9 p3
	( timeout 60 "$HS_BIN/hs-append" -t 50s s3 <"$HS_T/ins" >"$HS_T/s3.out" 2>"$HS_T/s3.err"
	  echo $? >"$HS_T/s3.rc" ) 3>&- &
	sleep 2.5
	[ ! -s "$HS_T/s3.rc" ]
	# Only "first" is released: nothing after it is on all 3.
	[ "$(stream_stat s3 lng)" = $(($(stream_stat s3 epoch) * 4294967296 + 1)) ]
	[ "$(admin stats | awk '$1 == "serve" && $2 == "runs_stalled" { print $3 }')" -ge 1 ]
	peer_start p3 --node-id 3
	local deadline=$((SECONDS + 30))
	while ! [ -s "$HS_T/s3.rc" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	[ "$(cat "$HS_T/s3.rc")" = 0 ] || { cat "$HS_T/s3.err"; false; }
	LOG=$(stream_stat s3 log)
	(echo first; cat "$HS_T/ins") >"$HS_T/ins.all"
	check_copies 3 "$HS_T/ins.all" "unix:$HS_T/p1.sock" "unix:$HS_T/p2.sock" "unix:$HS_T/p3.sock"
	timeout 60 "$HS_BIN/hs-cat" s3 >"$HS_T/outs"
	cmp "$HS_T/ins.all" "$HS_T/outs"
	hs_daemon_stop serve
	for a in p1 p2 p3; do hs_daemon_stop $a; done
}

@test "hs-tail -F waits out a stream that cannot be activated (R=3, a peer down) and goes on" {
	cluster3
	run -0 admin stream create f3 --replication 3
	run -0 app f3 <(echo first)
	( timeout 60 "$HS_BIN/hs-tail" -F --from head -c 2 -t 2s f3 >"$HS_T/f3.out" 2>"$HS_T/f3.err"
	  echo $? >"$HS_T/f3.rc" ) 3>&- &
	local deadline=$((SECONDS + 10))
	while ! [ -s "$HS_T/f3.out" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	[ "$(cat "$HS_T/f3.out")" = first ]
	# The new hs-serve cannot take a new epoch with 2 of 3 peers: the
	# follower's READ ends with "try again" after the peer wait, more
	# than once; -F asks again until the peer is back.
	hs_daemon_stop serve
	hs_daemon_kill9 p3
	serve_start --peer "unix:$HS_T/p1.sock" --peer "unix:$HS_T/p2.sock" \
		--peer "unix:$HS_T/p3.sock" --replication 2
	sleep 7
	[ ! -s "$HS_T/f3.rc" ] || { cat "$HS_T/f3.err"; false; }
	peer_start p3 --node-id 3
	run -0 app f3 <(echo second)
	deadline=$((SECONDS + 30))
	while ! [ -s "$HS_T/f3.rc" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	[ "$(cat "$HS_T/f3.rc")" = 0 ] || { cat "$HS_T/f3.err"; false; }
	[ "$(printf 'first\nsecond\n')" = "$(cat "$HS_T/f3.out")" ]
	hs_daemon_stop serve
	for a in p1 p2 p3; do hs_daemon_stop $a; done
}

@test "a sequencer fenced by a newer epoch fails its append (sealed), then takes over again" {
	# Neither advertises an address, so each takes the stream over from
	# the other instead of redirecting (53-multi-serve.bats): fencing.
	local i
	for i in 1 2 3; do
		peer_start p$i --node-id $i
	done
	serve_start --peer "unix:$HS_T/p1.sock" --peer "unix:$HS_T/p2.sock" \
		--peer "unix:$HS_T/p3.sock" --replication 2 --advertise ""
	hs_daemon_start serve2 "$HS_BIN/hs-serve" --data "$HS_T/serve2.d" \
		--listen "unix:$HS_T/s2.sock" --peer "unix:$HS_T/p1.sock" \
		--peer "unix:$HS_T/p2.sock" --peer "unix:$HS_T/p3.sock" --replication 2 \
		--advertise ""
	run -0 app -c z <(echo a1)
	run -0 app -a "unix:$HS_T/s2.sock" z <(echo b1)
	# serve's epoch is sealed now: its next append is refused, not acked.
	run -75 app z <(echo a2)
	[[ "$output" == *"sealed"* ]]
	run -0 app z <(echo a3)
	run -0 timeout 30 "$HS_BIN/hs-cat" z
	[ "$output" = "$(printf 'a1\nb1\na3')" ]
	[ "$(admin stats | awk '$1 == "serve" && $2 == "streams_fenced" { print $3 }')" -ge 1 ]
	hs_daemon_stop serve2
}

# peer_runs NAME: runs the peer's store took since it started (STATS).
peer_runs() {
	ptool -a "unix:$HS_T/$1.sock" stats | sed -n 's/^runs_stored //p'
}

@test "R=2: a nearly full peer (--min-free) gets no runs, shows as full, and is used again with room" {
	local i d
	for d in serve2 serve p1 p2 p3; do hs_daemon_stop $d; done
	# 1P is more than any disk: p3 refuses ordinary runs from the start.
	peer_start p3 --node-id 3 --min-free 1P
	cluster3
	grep -q "disk of $HS_T/p3.d nearly full: .* below --min-free 1PiB; refusing new records" \
		"$HS_T/p3.err"
	# Eight new streams: some first copyset holds p3 (all avoid it with
	# probability (1/3)^8), its STORE is refused and the run goes on p1, p2.
	for i in 1 2 3 4 5 6 7 8; do
		seq $((i * 10000)) $((i * 10000 + 2499)) >"$HS_T/inf$i"
		run -0 app -c full$i "$HS_T/inf$i"
	done
	for i in 1 2 3 4 5 6 7 8; do
		LOG=$(stream_stat full$i log)
		check_copies 2 "$HS_T/inf$i" "unix:$HS_T/p1.sock" "unix:$HS_T/p2.sock"
		[ -z "$(copies "unix:$HS_T/p3.sock")" ]
	done
	[ "$(peer_runs p3)" = 0 ]
	[ "$(ptool -a "unix:$HS_T/p3.sock" stats | sed -n 's/^low_space //p')" = 1 ]
	[ "$(ptool -a "unix:$HS_T/p3.sock" stats | sed -n 's/^runs_refused_nospace //p')" -ge 1 ]
	grep -q "peer unix:$HS_T/p3.sock: disk nearly full; left out of copysets for 10 s" \
		"$HS_T/serve.err"
	run -0 admin cluster status
	[[ "$output" =~ peer\ 3\ +up\ .*no\ space\ left\ on\ device ]] || { echo "$output" >&3; false; }
	run -0 admin cluster status --json
	[[ "$output" == *'"node_id":3,'*'"last_error":"no space left on device"'* ]]
	# With room again (a restart without the limit), new copysets take p3.
	hs_daemon_stop p3
	peer_start p3 --node-id 3 --min-free 0
	local deadline=$((SECONDS + 10))
	until admin stats | grep -q '^peer/3 connected 1$' || [ $SECONDS -ge $deadline ]; do
		sleep 0.1
	done
	for i in 1 2 3 4 5 6 7 8; do
		run -0 app -c again$i <(seq 1 1000)
	done
	[ "$(peer_runs p3)" -ge 1 ]
	hs_daemon_stop serve
}

@test "R=1 over one full peer: appends stall and time out (75), reads go on, resume with room" {
	local d
	for d in serve p1 p2 p3; do hs_daemon_stop $d; done
	peer_start p1 --node-id 1
	serve_start --peer "unix:$HS_T/p1.sock" --replication 1
	run -0 app -c one <(echo before)
	hs_daemon_stop p1
	peer_start p1 --node-id 1 --min-free 1P
	local deadline=$((SECONDS + 10))
	until admin stats | grep -q '^peer/1 connected 1$' || [ $SECONDS -ge $deadline ]; do
		sleep 0.1
	done
	# Never an error reply: the run waits, the client gives up not knowing.
	run -75 --separate-stderr timeout 20 "$HS_BIN/hs-append" -t 2s one <(echo during)
	[[ "$stderr" == *"no answer from hs-serve within 2s"*"0 records acknowledged"* ]] ||
		{ echo "$stderr" >&3; false; }
	[ "$(admin stats | awk '$1 == "serve" && $2 == "runs_stalled" { print $3 }')" -ge 1 ]
	grep -q "peer unix:$HS_T/p1.sock: disk nearly full" "$HS_T/serve.err"
	admin stats | grep -q '^peer/1 full 1$'
	# Refused once per FULL_AVOID_MS (10 s), not re-sent in a loop.
	[ "$(ptool -a "unix:$HS_T/p1.sock" stats | sed -n 's/^runs_refused_nospace //p')" -le 2 ]
	[ "$(grep -c 'disk nearly full' "$HS_T/serve.err")" -le 2 ]
	# Reads go on: the tail is the release point, so hs-cat does not wait
	# for the stalled append.
	run -0 timeout 30 "$HS_BIN/hs-cat" -t 5s one
	[ "$output" = before ]
	# A follower from the tail gets the stalled append once it is stored
	# (it was in flight, not acknowledged, when the follower started).
	( timeout 30 "$HS_BIN/hs-tail" -c 1 one >"$HS_T/one.tail" 2>"$HS_T/one.tail.err"
	  echo $? >"$HS_T/one.tail.rc" ) 3>&- &
	sleep 0.5
	# Room again: the stalled run goes out and is stored.
	hs_daemon_stop p1
	peer_start p1 --node-id 1
	deadline=$((SECONDS + 20))
	while ! [ -s "$HS_T/one.tail.rc" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	[ "$(cat "$HS_T/one.tail.rc")" = 0 ] || { cat "$HS_T/one.tail.err"; false; }
	[ "$(cat "$HS_T/one.tail")" = during ]
	run -0 app one <(echo after)
	run -0 timeout 30 "$HS_BIN/hs-cat" one
	[ "$output" = "$(printf 'before\nduring\nafter')" ]
	hs_daemon_stop serve
	hs_daemon_stop p1
}
