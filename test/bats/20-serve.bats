#!/usr/bin/env bats
# 20-serve: hs-serve as a daemon - spawning and supervising its peer, the
# create/append/read round trip, epochs across a kill -9 restart, listing,
# deletion, shutdown, and refusing non-loopback TCP.

load helpers

# The supervised hs-peer child of hs-serve (one pid).
serve_child() {
	pgrep -P "$(hs_daemon_pid serve)" -x hs-peer
}

cli() {
	timeout 30 "$HS_BIN/$@"
}

setup_file() {
	hs_tmpdir
	serve_start
}

teardown_file() {
	hs_daemon_stop serve
	hs_tmpdir_remove
}

@test "hs-serve spawns its own hs-peer and is ready with the socket 0600" {
	run serve_child
	[ "$status" -eq 0 ]
	[ -n "$output" ]
	[ "$(cat "$HS_T/serve.ready")" = "unix:$HS_T/s.sock" ]
	[ "$(stat -c %a "$HS_T/s.sock")" = 600 ]
	[ -S "$HS_T/s.sock.p0" ]
}

@test "create, append, read back" {
	run cli hs-admin stream create rt
	[ "$status" -eq 0 ]
	run cli hs-append rt < <(printf 'one\ntwo\n\nfour\n')
	[ "$status" -eq 0 ]
	run cli hs-cat rt
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'one\ntwo\n\nfour')" ]
	run cli hs-cat rt tail-2..
	[ "$output" = "$(printf '\nfour')" ]
	run cli hs-cat rt head+1..head+2
	[ "$output" = "two" ]
	run cli hs-cat --format '%l\n' rt -c 1
	[[ "$output" =~ ^e[0-9]+n1$ ]]
}

@test "append to an unknown stream fails; -c creates it" {
	run cli hs-append nosuch < <(echo x)
	[ "$status" -eq 66 ]
	run cli hs-append -c made < <(seq 3)
	[ "$status" -eq 0 ]
	run cli hs-cat made
	[ "$output" = "$(seq 3)" ]
}

@test "stream list, info, delete" {
	run cli hs-admin stream create l1 l2 l3
	[ "$status" -eq 0 ]
	run cli hs-admin stream list --names --prefix l
	[ "$output" = "$(printf 'l1\nl2\nl3')" ]
	run cli hs-admin stream create l1
	[ "$status" -eq 65 ]
	run cli hs-admin stream delete -f l2
	[ "$status" -eq 0 ]
	run cli hs-admin stream list --names --prefix l
	[ "$output" = "$(printf 'l1\nl3')" ]
	run cli hs-admin stream info l2
	[ "$status" -eq 66 ]
}

@test "time positions are resolved by timestamp" {
	cli hs-append -c tm < <(seq 5)
	sleep 0.05
	t=$(date +%s%3N)
	sleep 0.05
	cli hs-append tm < <(seq 6 8)
	run cli hs-cat tm "@$t.."
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 6 8)" ]
	run cli hs-cat tm "..@$t"
	[ "$output" = "$(seq 5)" ]
}

@test "hs-tail -F follows new appends" {
	cli hs-append -c fol < <(echo old)
	timeout 10 "$HS_BIN/hs-tail" -F fol -c 2 >"$HS_T/tail.out" 3>&- &
	tp=$!
	sleep 0.3
	cli hs-append fol < <(printf 'new1\nnew2\n')
	wait "$tp"
	[ "$(cat "$HS_T/tail.out")" = "$(printf 'new1\nnew2')" ]
}

@test "a killed hs-peer child is restarted and appends go on" {
	cli hs-append -c sup < <(seq 10)
	old=$(serve_child)
	kill -9 "$old"
	run cli hs-append sup < <(seq 11 20)
	[ "$status" -eq 0 ]
	new=$(serve_child)
	[ -n "$new" ] && [ "$new" != "$old" ]
	run cli hs-cat sup
	[ "$output" = "$(seq 20)" ]
	grep -q "killed by signal 9; restarting it" "$HS_T/serve.err"
}

@test "stats and cluster status report real figures" {
	run cli hs-admin stats
	[ "$status" -eq 0 ]
	[[ "$output" == *"stream/sup records 20"* ]] || [[ "$output" == *"stream/sup"*"records"* ]]
	[[ "$output" == *"peer/1 connected 1"* ]]
	run cli hs-admin cluster status
	[ "$status" -eq 0 ]
	[[ "$output" == *"healthy"*"yes"* ]]
}

@test "kill -9 of hs-serve mid-append: after a restart every acknowledged record is there once, in order, in a new epoch" {
	cli hs-append -c crash < <(echo first)
	e1=$(cli hs-cat --format '%l\n' crash | sed 's/^e\([0-9]*\)n.*/\1/')
	seq 2 30000000 | timeout 30 "$HS_BIN/hs-append" --print-lsn crash \
		>"$HS_T/acks" 2>"$HS_T/append.err" 3>&- &
	ap=$!
	sleep 0.4
	hs_daemon_kill9 serve
	wait "$ap" || true
	# The old child gets SIGTERM from the kernel (PR_SET_PDEATHSIG).
	serve_start
	acked=$(wc -l <"$HS_T/acks")
	echo "# acked $acked" >&3
	cli hs-cat --format '%l %p\n' crash >"$HS_T/all"
	# Payloads are 1, 2, 3... in order, each once (a stored prefix).
	run awk '{ if ($2 != NR && !(NR == 1 && $2 == "first")) { print "bad at " NR ": " $0; exit 1 } }' "$HS_T/all"
	[ "$status" -eq 0 ]
	# Every acknowledged LSN holds the record acknowledged for it.
	run awk 'NR == FNR { lsn[FNR + 1] = $1; n = FNR; next }
		{ at[$2] = $1 }
		END { for (i = 2; i <= n + 1; i++) if (at[i] != lsn[i]) { print "lost " i; exit 1 } }' \
		"$HS_T/acks" "$HS_T/all"
	[ "$status" -eq 0 ]
	# A new epoch, above every earlier one.
	echo after | cli hs-append crash
	e2=$(cli hs-cat --format '%l\n' crash tail-1.. | sed 's/^e\([0-9]*\)n.*/\1/')
	[ "$e2" -gt "$e1" ]
}

@test "10,000 streams created in batches and listed" {
	seq -f 'many%05g' 10000 >"$HS_T/names"
	run cli hs-admin stream create --from-file "$HS_T/names"
	[ "$status" -eq 0 ]
	run cli hs-admin stream list --names --prefix many
	[ "$(echo "$output" | wc -l)" -eq 10000 ]
	[ "$(echo "$output" | head -1)" = many00001 ]
	[ "$(echo "$output" | tail -1)" = many10000 ]
}

@test "a non-loopback TCP address is refused with 64" {
	run --separate-stderr timeout 5 "$HS_BIN/hs-serve" --data "$HS_T/x" --listen 192.0.2.1:7000
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"no authentication"* ]]
	run timeout 5 "$HS_BIN/hs-serve" --replication 3 --data "$HS_T/x"
	[ "$status" -eq 64 ]
}

@test "TCP on loopback with port 0 works" {
	hs_daemon_start tcp "$HS_BIN/hs-serve" --data "$HS_T/tcp.d" --listen 127.0.0.1:0
	addr=$(cat "$HS_T/tcp.ready")
	[[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]]
	run timeout 10 "$HS_BIN/hs-append" -a "$addr" -c t < <(echo tcp)
	[ "$status" -eq 0 ]
	run timeout 10 "$HS_BIN/hs-cat" -a "$addr" t
	[ "$output" = tcp ]
	hs_daemon_stop tcp
}

@test "SIGTERM stops hs-serve with 0 and stops its peer, quietly" {
	hs_daemon_start term "$HS_BIN/hs-serve" --data "$HS_T/term.d" --listen "unix:$HS_T/t.sock"
	child=$(pgrep -P "$(hs_daemon_pid term)" -x hs-peer)
	[ -n "$child" ]
	echo x | timeout 10 "$HS_BIN/hs-append" -a "unix:$HS_T/t.sock" -c s
	hs_daemon_stop term
	! hs_alive "$child"
	[ ! -e "$HS_T/t.sock" ]
	# A clean stop is no reason for a warning (its own peer going away).
	! grep -E 'warning|error' "$HS_T/term.err" || false
}

# Settings (cli.h "CONFIGURATION"): "<prog>.<option>" for any long option,
# addr and timeout unscoped too; hs-serve hands its --config and -X on to
# the peers it spawns, so hs-peer.* settings reach them.
@test "settings from the configuration file reach hs-serve, its peers and the clients; flags win" {
	local conf=$HS_T/cfg.conf
	printf '%s\n' 'hs-serve.local-peers = 2' 'hs-serve.replication = 2' \
		'hs-peer.min-free = 1P' 'timeout = 2s' "addr = unix:$HS_T/cfg.sock" >"$conf"
	hs_daemon_start cfg "$HS_BIN/hs-serve" --config "$conf" --data "$HS_T/cfg.d" \
		--listen "unix:$HS_T/cfg.sock"
	[ "$(pgrep -P "$(hs_daemon_pid cfg)" -x hs-peer | wc -l)" = 2 ]
	# addr from the file (HS_ADDR unset), replication 2 by default.
	run env -u HS_ADDR timeout 30 "$HS_BIN/hs-admin" --config "$conf" stream create c1
	[ "$status" -eq 0 ]
	run env -u HS_ADDR timeout 30 "$HS_BIN/hs-admin" --config "$conf" stream info c1
	[[ "$output" == *$'\nreplication   2\n'* ]]
	# Both peers refuse (min-free 1P): the append waits; timeout 2s from the file.
	run --separate-stderr env -u HS_ADDR timeout 30 "$HS_BIN/hs-append" --config "$conf" c1 \
		< <(echo x)
	[ "$status" -eq 75 ]
	[[ "$stderr" == *"no answer from hs-serve within 2s (--timeout)"* ]]
	# The environment beats the file, the command line beats both.
	run env HS_ADDR=unix:$HS_T/nothere timeout 30 "$HS_BIN/hs-admin" --config "$conf" stream list
	[ "$status" -eq 69 ]
	run env HS_ADDR=unix:$HS_T/nothere timeout 30 "$HS_BIN/hs-admin" --config "$conf" \
		-a "unix:$HS_T/cfg.sock" stream list
	[ "$status" -eq 0 ]
	hs_daemon_stop cfg
	# -X on hs-serve's command line reaches the peers too: room again.
	hs_daemon_start cfg "$HS_BIN/hs-serve" --config "$conf" -X hs-peer.min-free=0 \
		--data "$HS_T/cfg.d" --listen "unix:$HS_T/cfg.sock"
	run env -u HS_ADDR timeout 30 "$HS_BIN/hs-append" --config "$conf" -t 10s c1 < <(echo y)
	[ "$status" -eq 0 ]
	run env -u HS_ADDR timeout 30 "$HS_BIN/hs-cat" --config "$conf" -t 10s -n 1 c1
	[ "$output" = y ]
	# A setting yields to an option the program refuses it with (-0 and
	# --format); --help does not read the file.
	echo 'hs-cat.format = json' >>"$conf"
	run env -u HS_ADDR timeout 30 "$HS_BIN/hs-cat" --config "$conf" -n 1 c1
	[[ "$output" == '{"lsn":'*'"data":"y"}' ]]
	env -u HS_ADDR timeout 30 "$HS_BIN/hs-cat" --config "$conf" -0 -n 1 c1 >"$HS_T/c1.nul"
	[ "$(od -An -c "$HS_T/c1.nul" | tr -d ' ')" = 'y\0' ]
	echo 'hs-cat.typo = 1' >>"$conf"
	run timeout 30 "$HS_BIN/hs-cat" --config "$conf" --help
	[ "$status" -eq 0 ]
	# A typo is an error, not ignored.
	printf 'hs-serve.replicaton = 2\n' >"$HS_T/typo.conf"
	run timeout 30 "$HS_BIN/hs-serve" --config "$HS_T/typo.conf" --data "$HS_T/typo.d"
	[ "$status" -eq 78 ]
	[[ "$output" == *"unknown setting 'hs-serve.replicaton' (hs-serve has no --replicaton)"* ]]
	# ... and so is one in its peers' settings: hs-serve stops, not restarts them.
	printf 'hs-peer.min-fre = 1G\n' >"$HS_T/ptypo.conf"
	run timeout 30 "$HS_BIN/hs-serve" --config "$HS_T/ptypo.conf" --data "$HS_T/ptypo.d" \
		--listen "unix:$HS_T/ptypo.sock"
	[ "$status" -eq 78 ]
	[[ "$output" == *"unknown setting 'hs-peer.min-fre'"*"hs-peer 1 exited with status 78"* ]]
	hs_daemon_stop cfg
}
