#!/usr/bin/env bats
# 24-subs: named subscriptions end to end (DESIGN §7) - admin verbs,
# deliver-and-ack with a checkpoint that advances, at-least-once across a
# kill -9 of the subscriber, the checkpoint across kill -9 of hs-serve and
# of its peer, --max-unacked and --ack-timeout (with test/tools/hs-subtool,
# a subscriber that never acknowledges).

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

admin() { timeout 20 "$HS_BIN/hs-admin" "$@"; }
append() { timeout 30 "$HS_BIN/hs-append" "$@"; }
tailsub() { timeout 30 "$HS_BIN/hs-tail" "$@"; }
subtool() { timeout 30 "$HS_TOOLS/hs-subtool" "$HS_ADDR" "$@"; }

# Wait up to $2 seconds for file $1 to hold a line equal to $3.
wait_line() {
	local deadline=$((SECONDS + $2))
	until grep -qx -- "$3" "$1" 2>/dev/null; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# The checkpoint of subscription $1 as printed by sub info --json.
ckpt() { admin sub info "$1" --json | sed 's/.*"checkpoint":"\([^"]*\)".*/\1/'; }

@test "sub create, list, info, delete" {
	admin stream create adm
	run admin sub create a1 --stream adm --ack-timeout 2s --max-unacked 7
	[ "$status" -eq 0 ]
	run admin sub create a1 --stream adm
	[ "$status" -eq 65 ]
	[[ "$output" == *"already exists"* ]]
	run admin sub create a2 --stream nosuchstream
	[ "$status" -eq 66 ]
	run admin sub create a3 --stream adm --from head
	[ "$status" -eq 0 ]
	run admin sub create a4 --stream adm --max-unacked 0
	[ "$status" -eq 64 ]
	run admin sub create a5
	[ "$status" -eq 64 ]
	run admin sub list --names
	[ "$status" -eq 0 ]
	[[ "$output" == *a1* && "$output" == *a3* && "$output" != *a2* ]]
	run admin sub list --names --stream adm
	[ "$(echo "$output" | grep -c '^a')" -ge 2 ]
	run admin sub info a1 --json
	[ "$status" -eq 0 ]
	[[ "$output" == *'"stream":"adm"'* ]]
	[[ "$output" == *'"ack_timeout_ms":2000'* ]]
	[[ "$output" == *'"max_unacked":7'* ]]
	[[ "$output" == *'"consumers":0'* ]]
	run admin sub list --json
	[[ "$output" == *'"name":"a1"'* ]]
	run admin sub info nosuch
	[ "$status" -eq 66 ]
	run admin sub delete a1
	[ "$status" -eq 64 ] # not a tty: -f needed
	run admin sub delete -f a1 a3
	[ "$status" -eq 0 ]
	run admin sub info a1
	[ "$status" -eq 66 ]
	run admin sub delete -f a1
	[ "$status" -eq 66 ]
	run admin sub list --names --stream adm
	[[ "$output" != *a1* ]]
	# The name can be used again.
	run admin sub create a1 --stream adm
	[ "$status" -eq 0 ]
}

@test "deliver and ack: -c N prints N, the next run starts after them" {
	seq 1 100 | append -c da
	admin sub create da1 --stream da --from head
	run tailsub --sub da1 -c 100
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 1 100)" ]
	[ "$(ckpt da1)" = e1n101 ]
	seq 101 130 | append da
	run tailsub --sub da1 -c 30
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 101 130)" ]
	# A subscription from the tail sees only what comes later.
	admin sub create da2 --stream da
	seq 131 135 | append da
	run tailsub --sub da2 -c 5 --format '%p\n'
	[ "$output" = "$(seq 131 135)" ]
	run tailsub --sub nosuch -c 1
	[ "$status" -eq 66 ]
	run tailsub --sub da1 da
	[ "$status" -eq 64 ]
	run tailsub --sub da1 --from head
	[ "$status" -eq 64 ]
}

@test "one session at a time: a second subscriber gets exit 75" {
	admin stream create lk
	admin sub create lk1 --stream lk
	"$HS_TOOLS/hs-subtool" "$HS_ADDR" lk1 3000 >/dev/null 3>&- &
	local pid=$!
	sleep 0.5
	run admin sub info lk1 --json
	[[ "$output" == *'"consumers":1'* ]]
	run tailsub --sub lk1 -c 1
	[ "$status" -eq 75 ]
	[[ "$output" == *"in use"* ]]
	wait "$pid"
}

@test "at-least-once: kill -9 of the subscriber loses nothing" {
	admin stream create al
	admin sub create al1 --stream al
	"$HS_BIN/hs-tail" --sub al1 >"$HS_T/al.1" 3>&- &
	local pid=$!
	sleep 0.3
	seq 1 20000 | append al
	wait_line "$HS_T/al.1" 20 5000
	kill -9 "$pid"
	wait "$pid" || true
	seq 20001 30000 | append al
	"$HS_BIN/hs-tail" --sub al1 >"$HS_T/al.2" 3>&- &
	pid=$!
	wait_line "$HS_T/al.2" 20 30000
	kill -TERM "$pid"
	wait "$pid"
	# Every record was printed by one of them; the second starts at or
	# before the first record the first one had not printed.
	sort -n -u "$HS_T/al.1" "$HS_T/al.2" >"$HS_T/al.u"
	[ "$(seq 1 30000)" = "$(cat "$HS_T/al.u")" ]
	[ "$(head -1 "$HS_T/al.2")" -le $(($(tail -1 "$HS_T/al.1") + 1)) ]
}

@test "--max-unacked pauses delivery of a subscriber that does not ack" {
	seq 1 50 | append -c mu
	admin sub create mu1 --stream mu --from head --max-unacked 10 --ack-timeout 60s
	run subtool mu1 700
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 10 ]
	[ "$(echo "$output" | cut -d' ' -f2)" = "$(seq 1 10)" ]
	# Acknowledging 4 of them lets 4 more in (and moves the checkpoint).
	run subtool mu1 700 4
	[ "${#lines[@]}" -eq 14 ]
	[ "$(echo "$output" | cut -d' ' -f2 | tail -1)" = 14 ]
	run admin sub info mu1 --json
	[[ "$output" != *'"checkpoint":"e1n1"'* ]]
}

@test "--ack-timeout redelivers what was not acknowledged" {
	seq 1 5 | append -c at
	admin sub create at1 --stream at --from head --ack-timeout 300ms
	run subtool at1 1000
	[ "$status" -eq 0 ]
	# Delivered, then again after 300 ms, 600 ms, 900 ms.
	[ "${#lines[@]}" -ge 15 ]
	[ "$(echo "$output" | cut -d' ' -f2 | sort -u)" = "$(seq 1 5)" ]
	# Nothing was acknowledged: a normal subscriber still gets everything.
	run tailsub --sub at1 -c 5
	[ "$output" = "$(seq 1 5)" ]
}

@test "sub create --from @time and head+N: delivery starts there" {
	seq 1 5 | append -c tp
	sleep 0.05
	local t
	t=$(($(date +%s%N) / 1000000))
	sleep 0.05
	seq 6 10 | append tp
	admin sub create tp1 --stream tp --from "@$t"
	run tailsub --sub tp1 -c 5
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 6 10)" ]
	# The first record at or after the time: a time before everything is
	# head, one after everything is tail (only later records).
	admin sub create tp2 --stream tp --from @0
	run tailsub --sub tp2 -c 10
	[ "$output" = "$(seq 1 10)" ]
	admin sub create tp3 --stream tp --from @+1h
	run admin sub info tp3 --json
	[[ "$output" == *'"checkpoint":"e1n11"'* ]]
	admin sub create tp4 --stream tp --from head+3
	run tailsub --sub tp4 -c 7
	[ "$output" = "$(seq 4 10)" ]
	admin sub create tp5 --stream tp --from tail-2
	run tailsub --sub tp5 -c 2
	[ "$output" = "$(seq 9 10)" ]
}

@test "the checkpoint survives kill -9 of hs-serve and of its peer" {
	seq 1 200 | append -c ck
	admin sub create ck1 --stream ck --from head
	run tailsub --sub ck1 -c 120
	[ "$output" = "$(seq 1 120)" ]
	sleep 0.3 # the session's final checkpoint write
	local before peer
	before=$(ckpt ck1)
	peer=$(admin stats --json | grep '"scope":"peer/1"' | sed 's/.*"pid":\([0-9]*\).*/\1/')
	[ -n "$peer" ]
	kill -9 "$peer"
	hs_daemon_kill9 serve
	serve_start
	[ "$(ckpt ck1)" = "$before" ]
	seq 201 210 | append ck
	run tailsub --sub ck1 -c 90
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 121 210)" ]
	run admin sub info ck1 --json
	[[ "$output" == *'"checkpoint":"e2n11"'* ]]
	# Last test: stop the restarted hs-serve here, in the shell that
	# started it, so its exit status is checked.
	hs_daemon_stop serve
}
