#!/usr/bin/env bats
# 53-multi-serve: several hs-serve on the same peers (docs/replication.md §7).
# Three external hs-peer (node ids 1..3, R = 2) and two hs-serve, A and B,
# each advertising its socket.  One sequencer per stream: appends and reads
# sent to B for a stream A sequences are redirected to A (same epoch, no
# takeover); with A killed, clients given -a A,B fail over to B, which takes
# the stream over; with A paused (SIGSTOP), B takes over after its probe of
# A goes unanswered, and A woken (SIGCONT) acknowledges nothing more: the
# histories of the appenders, read back through B, are exactly what was
# acknowledged, no duplicate (test/workload/check).  B's probe of an owner
# runs on its loop: B serves its other streams meanwhile, and streams
# waiting for the same owner share one probe.  hs-admin stream info,
# exists, trim and sub create sent to B follow the redirect to A.

load helpers

WL=$BATS_TEST_DIRNAME/../workload
CHECK=$WL/check

setup() {
	hs_tmpdir
	A=unix:$HS_T/s.sock
	B=unix:$HS_T/s2.sock
}

teardown() {
	[ -n "${HS_T:-}" ] || return 0
	local pid n
	if [ -f "$HS_T/appenders" ]; then
		for pid in $(cat "$HS_T/appenders"); do
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		done
	fi
	for n in serve serve2; do
		[ -f "$HS_T/$n.bgpid" ] && kill -CONT "$(hs_daemon_pid "$n")" 2>/dev/null
		hs_daemon_stop "$n" || true
	done
	for n in p1 p2 p3; do
		hs_daemon_stop "$n" || true
	done
	hs_tmpdir_remove
}

# Peers 1..3, A (serve, s.sock) and B (serve2, s2.sock), R = 2.
two_serves() {
	local i peers=()
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	for i in 1 2 3; do
		peer_start "p$i" --node-id "$i" || return 1
		peers+=(--peer "unix:$HS_T/p$i.sock")
	done
	serve_start "${peers[@]}" --replication 2 -v || return 1
	hs_daemon_start serve2 "$HS_BIN/hs-serve" --data "$HS_T/serve2.d" \
		--listen "$B" "${peers[@]}" --replication 2 -v || return 1
	unset HS_ADDR
}

app() {
	timeout 60 "$HS_BIN/hs-append" "$@"
}

# epochs FILE: the distinct epochs of the eXnY lines of FILE.
epochs() {
	sed -n 's/^e\([0-9]*\)n[0-9]*$/\1/p' "$1" | sort -un
}

@test "appends and reads sent to B for a stream A sequences are redirected to A" {
	two_serves
	app -a "$A" -c --print-lsn z <(seq 1 100) >"$HS_T/l1"
	app -a "$B" --print-lsn z <(seq 101 200) >"$HS_T/l2"
	# The same epoch: B sent the client to A instead of taking over.
	[ "$(epochs "$HS_T/l1")" = "$(epochs "$HS_T/l2")" ]
	[ "$(wc -l <"$HS_T/l2")" -eq 100 ]
	run -0 timeout 30 "$HS_BIN/hs-cat" -a "$B" z
	[ "$output" = "$(seq 1 200)" ]
	run -0 timeout 30 "$HS_BIN/hs-tail" -a "$B" -n 3 -c 3 z
	[ "$output" = "$(seq 198 200)" ]
	app -a "$A" --print-lsn z <(echo 201) >"$HS_T/l3"
	[ "$(epochs "$HS_T/l1")" = "$(epochs "$HS_T/l3")" ]
	run -0 timeout 30 "$HS_BIN/hs-cat" -a "$A" z
	[ "${#lines[@]}" -eq 201 ]
}

@test "-a A,B: with A killed, clients fail over to B, which takes the stream over" {
	two_serves
	app -a "$A" -c --print-lsn z <(seq 1 100) >"$HS_T/l1"
	hs_daemon_kill9 serve
	app -a "$A,$B" --print-lsn z <(seq 101 200) >"$HS_T/l2"
	[ "$(epochs "$HS_T/l2")" -gt "$(epochs "$HS_T/l1")" ]
	HS_ADDR="$A,$B" run -0 timeout 30 "$HS_BIN/hs-cat" z
	[ "$output" = "$(seq 1 200)" ]
	grep -q 'does not answer: taking over' "$HS_T/serve2.err"
}

@test "-a A,B: hs-append fails over mid-run; batches in flight are reported, not resent" {
	local s=0 acked unknown n
	two_serves
	app -a "$A" -c z <(echo 0)
	# A slow producer.  A is paused between the first and the second
	# burst, so the second one's batches are in flight to it when it is
	# killed: their outcome is unknown; the third goes to B.
	{ seq 1 3000; sleep 1.5; seq 3001 6000; sleep 1.5; seq 6001 9000; } |
		timeout 60 "$HS_BIN/hs-append" -a "$A,$B" -t 5s z 2>"$HS_T/app.err" &
	local pid=$!
	sleep 0.7
	kill -STOP "$(hs_daemon_pid serve)"
	sleep 1.5
	hs_daemon_kill9 serve
	wait "$pid" || s=$?
	sed 's/^/# /' "$HS_T/app.err" >&3
	[ "$s" -eq 75 ]
	grep -q 'failing over' "$HS_T/app.err"
	acked=$(sed -n 's/.* \([0-9]*\) records\{0,1\} acknowledged.*/\1/p' "$HS_T/app.err")
	unknown=$(sed -n 's/.*(\([0-9]*\) of them sent.*/\1/p' "$HS_T/app.err")
	[ "$unknown" -gt 0 ]
	run -0 timeout 30 "$HS_BIN/hs-cat" -a "$B" z
	# In input order, no duplicate, every acknowledged record.
	[ "$(printf '%s\n' "$output" | sort -n | uniq -d | wc -l)" -eq 0 ]
	[ "$output" = "$(printf '%s\n' "$output" | sort -n)" ]
	n=${#lines[@]}
	[ "$n" -ge $((acked + 1)) ] && [ "$n" -le $((acked + 1 + unknown)) ]
	[ "${lines[$((n - 1))]}" = 9000 ]
}

@test "zombie: A paused, -a A,B clients take over through B; A woken acknowledges nothing" {
	local s1=0 e_a e_b n
	[ -x "$HS_TOOLS/hs-wl" ] || skip "no hs-wl built"
	two_serves
	app -a "$A" -c --print-lsn z <(echo w9-1) >"$HS_T/l0"
	e_a=$(epochs "$HS_T/l0")
	printf 'invoke w9-1\nok %s w9-1\n' "$(cat "$HS_T/l0")" >"$HS_T/w9"
	timeout -k 5 60 "$WL/append-client" -a "$A,$B" -t 1000 --stream z --writer 1 \
		--count 1000000 --rate 500 >"$HS_T/w1" 2>"$HS_T/w1.err" 3>&- &
	a1=$!
	echo "$a1" >"$HS_T/appenders"
	sleep 1
	kill -STOP "$(hs_daemon_pid serve)"
	# Wait for acknowledgements in a newer epoch: B took over.
	for ((n = 0; n < 200; n++)); do
		sed -n 's/^ok e\([0-9]*\)n.*/\1/p' "$HS_T/w1" | sort -un | tail -1 >"$HS_T/e"
		[ "$(cat "$HS_T/e")" -gt "$e_a" ] && break
		sleep 0.1
	done
	e_b=$(cat "$HS_T/e")
	[ "$e_b" -gt "$e_a" ]
	grep -q 'does not answer: taking over' "$HS_T/serve2.err"
	sleep 1
	kill -CONT "$(hs_daemon_pid serve)"
	sleep 1
	# A woken with nothing to store for z still thinks it sequences z: the
	# first append it takes meets the seal (-HS_ESEALED, outcome unknown:
	# `info`) and fences it.
	app -a "$A" z <(echo w7-1) 2>/dev/null || true
	printf 'invoke w7-1\ninfo w7-1\n' >"$HS_T/w7"
	# A now sends its clients to B: an append through A lands in B's epoch.
	app -a "$A" --print-lsn z <(echo w8-1) >"$HS_T/l8"
	[ "$(epochs "$HS_T/l8")" -eq "$e_b" ]
	printf 'invoke w8-1\nok %s w8-1\n' "$(cat "$HS_T/l8")" >"$HS_T/w8"
	sleep 0.5
	kill -TERM "$a1"
	wait "$a1" || s1=$?
	rm -f "$HS_T/appenders"
	cat "$HS_T/w1.err"
	[ "$s1" -eq 0 ]
	# Nothing acknowledged in A's epoch after B's first acknowledgement.
	run -0 awk -v ea="$e_a" -v eb="$e_b" '
		$1 == "ok" { split($2, x, "n"); e = substr(x[1], 2) + 0
			if (e >= eb) seen = 1
			else if (seen && e == ea) { print "late ack " $0; bad = 1 } }
		END { exit bad }' "$HS_T/w1"
	HS_WL_TIMEOUT=30 "$WL/read-client" -a "$B" z >"$HS_T/r1"
	run timeout 60 "$CHECK" -w "$HS_T/w1" -w "$HS_T/w7" -w "$HS_T/w8" -w "$HS_T/w9" -r "$HS_T/r1"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^ok ' "$HS_T/w1")" -ge 300 ]
}

# stat ADDR KEY: the serve-scope counter KEY of the hs-serve at ADDR.
stat() {
	"$HS_BIN/hs-admin" -a "$1" stats | awk -v k="$2" '$1 == "serve" && $2 == k { print $3 }'
}

@test "a probe of a paused owner does not stall B's other streams" {
	local t0 t1 ms pid tk n s=0
	two_serves
	app -a "$A" -c z <(echo 1)
	app -a "$B" -c y <(echo 1)
	kill -STOP "$(hs_daemon_pid serve)"
	# B's first request for z finds A the owner and probes it: the
	# connection is accepted by A's kernel, the HELLO goes unanswered for
	# 500 ms, then B takes over.
	app -a "$B" --print-lsn z <(echo 2) >"$HS_T/lz" &
	pid=$!
	for ((n = 0; n < 200; n++)); do
		[ "$(stat "$B" owner_probes)" -ge 1 ] && break
		sleep 0.01
	done
	t0=$(date +%s%N)
	app -a "$B" y <(echo 2)
	t1=$(date +%s%N)
	# Still probing: B had not given up on A when y's append was done (a
	# blocking probe would have decided before serving it).
	tk=$(stat "$B" takeovers)
	ms=$(((t1 - t0) / 1000000))
	echo "# append to y during the probe: $ms ms; takeovers then: $tk" >&3
	wait "$pid" || s=$?
	kill -CONT "$(hs_daemon_pid serve)"
	[ "$s" -eq 0 ]
	[ "$ms" -lt 300 ]
	[ "$tk" -eq 0 ]
	grep -q 'does not answer: taking over' "$HS_T/serve2.err"
	[ "$(stat "$B" owner_probes)" -eq 1 ]
	[ "$(stat "$B" takeovers)" -eq 1 ]
	run -0 timeout 30 "$HS_BIN/hs-cat" -a "$B" y
	[ "$output" = "$(printf '1\n2')" ]
}

@test "a probe that finds the owner alive redirects; streams waiting for it all go on" {
	local i pids=() s
	two_serves
	for i in 1 2 3 4 5; do
		app -a "$A" -c "m$i" <(echo a)
	done
	# Five streams of A at once through B: one probe of A, five redirects.
	for i in 1 2 3 4 5; do
		app -a "$B" "m$i" <(echo b) &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		s=0
		wait "$i" || s=$?
		[ "$s" -eq 0 ]
	done
	[ "$(stat "$B" owner_probes)" -le 2 ]
	[ "$(stat "$B" redirects)" -ge 5 ]
	[ "$(stat "$B" takeovers)" -eq 0 ]
	for i in 1 2 3 4 5; do
		run -0 timeout 30 "$HS_BIN/hs-cat" -a "$A" "m$i"
		[ "$output" = "$(printf 'a\nb')" ]
	done
}

@test "hs-admin stream info, trim and sub create through B follow the redirect to A" {
	local e_a
	two_serves
	app -a "$A" -c --print-lsn z <(seq 1 10) >"$HS_T/l1"
	e_a=$(epochs "$HS_T/l1")
	run -0 "$HS_BIN/hs-admin" -a "$B" stream info --json z
	echo "$output"
	[[ "$output" == *"\"epoch\":$e_a,"* ]]
	run -0 "$HS_BIN/hs-admin" -a "$B" stream exists z
	run -0 "$HS_BIN/hs-admin" -a "$B" stream trim z --before "e${e_a}n4"
	run -0 timeout 30 "$HS_BIN/hs-cat" -a "$A" z
	[ "$output" = "$(seq 4 10)" ]
	run -0 "$HS_BIN/hs-admin" -a "$B" sub create --stream z s1
	run -0 "$HS_BIN/hs-admin" -a "$B" sub info s1
	# No takeover: A still sequences z in its epoch.
	[ "$(stat "$B" takeovers)" -eq 0 ]
	[ "$(stat "$B" redirects)" -ge 3 ]
	app -a "$A" --print-lsn z <(echo 11) >"$HS_T/l2"
	[ "$(epochs "$HS_T/l2")" -eq "$e_a" ]
}
