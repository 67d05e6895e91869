#!/usr/bin/env bats
# 25-durability: per-stream durability end to end.  hs-serve puts the runs
# of async (and memory) streams in STOREs flagged NOSYNC; the peer commits a
# turn without fsync only when every STORE in it was NOSYNC, syncs the WAL
# in the background, and counts both kinds in its STATS (commits_sync,
# commits_nosync, wal_syncs, store_frames_nosync).  A stream created without
# --durability takes hs-serve's --durability.

load helpers

# One hs-peer (sync mode, so its STATS can be read directly) behind one
# hs-serve --peer, for the whole file.
setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	hs_tmpdir
	peer_start p --node-id 1 --durability sync
	serve_start --peer "$PEER_ADDR"
	export HS_T HS_ADDR PEER_ADDR
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	local st=0
	hs_daemon_stop serve2 || st=1
	hs_daemon_stop serve || st=1
	hs_daemon_stop p || st=1
	hs_tmpdir_remove
	return $st
}

admin() {
	timeout 30 "$HS_BIN/hs-admin" "$@"
}

app() {
	timeout 60 "$HS_BIN/hs-append" "$@"
}

stat_of() { # KEY: print the value of one of the peer's STATS keys
	ptool -a "$PEER_ADDR" stats | sed -n "s/^$1 //p"
}

# snap: remember the peer's counters in S_<key>
snap() {
	local k
	for k in commits_sync commits_nosync wal_syncs store_frames_nosync store_frames; do
		eval "S_$k=$(stat_of $k)"
	done
}

# delta KEY: how much KEY grew since snap
delta() {
	local now old
	now=$(stat_of "$1")
	eval "old=\$S_$1"
	echo $((now - old))
}

@test "the peer reports its commit counters" {
	run -0 ptool -a "$PEER_ADDR" stats
	[[ "$output" == *$'\ncommits_sync '* ]]
	[[ "$output" == *$'\ncommits_nosync '* ]]
	[[ "$output" == *$'\nwal_syncs '* ]]
	[[ "$output" == *$'\nstore_frames_nosync '* ]]
	[[ "$output" == *$'\ndurability sync'* ]]
}

@test "streams keep the durability they were created with" {
	run -0 admin stream create t25-sync --durability sync
	run -0 admin stream create t25-async --durability async
	run -0 admin stream create t25-mem --durability memory
	run -0 admin stream create t25-dflt
	run -0 admin stream info t25-sync t25-async t25-mem t25-dflt
	[ "$(grep -cE '^durability +sync$' <<<"$output")" -eq 2 ]
	[ "$(grep -cE '^durability +async$' <<<"$output")" -eq 1 ]
	[ "$(grep -cE '^durability +memory$' <<<"$output")" -eq 1 ]
	# Activate each stream (register change and a hard SEAL: synced).
	for s in t25-sync t25-async t25-mem t25-dflt; do
		run -0 app "$s" <<<"first"
	done
}

@test "appends to an async stream are committed without fsync" {
	snap
	for i in 1 2 3 4 5; do
		run -0 app t25-async <<<"async $i"
	done
	[ "$(delta store_frames_nosync)" -ge 5 ]
	[ "$(delta commits_nosync)" -ge 5 ]
	d=$(delta commits_sync)
	[ "$d" -eq 0 ] || { echo "async appends made $d synced commits"; false; }
	# ... and the background sync made them durable soon after.
	sleep 0.4
	[ "$(delta wal_syncs)" -ge 1 ]
	run -0 timeout 30 "$HS_BIN/hs-cat" t25-async
	[ "${lines[0]}" = first ] && [ "${lines[5]}" = "async 5" ]
}

@test "a memory stream on a durable peer is NOSYNC too" {
	snap
	run -0 app t25-mem <<<"mem 1"
	[ "$(delta store_frames_nosync)" -ge 1 ]
	[ "$(delta commits_sync)" -eq 0 ]
}

@test "appends to a sync stream are fsynced before they are acknowledged" {
	snap
	for i in 1 2 3 4 5; do
		run -0 app t25-sync <<<"sync $i"
	done
	[ "$(delta store_frames_nosync)" -eq 0 ]
	[ "$(delta store_frames)" -ge 5 ]
	d=$(delta commits_sync)
	[ "$d" -ge 5 ] || { echo "5 sync appends, $d synced commits"; false; }
	run -0 timeout 30 "$HS_BIN/hs-cat" t25-sync
	[ "${#lines[@]}" -eq 6 ] && [ "${lines[5]}" = "sync 5" ]
}

@test "strace: sync appends fdatasync, async appends leave it to the timer" {
	command -v strace >/dev/null || skip "no strace"
	pid=$(hs_daemon_pid p)
	# Quiet the peer first: pending background syncs are done after 100 ms.
	sleep 0.3
	strace -f -qq -e trace=fdatasync,fsync -p "$pid" -o "$HS_T/st.async" 3>&- &
	spid=$!
	sleep 0.5
	snap
	for i in $(seq 20); do
		app t25-async <<<"a$i" || false
	done
	n_async=$(delta commits_nosync)
	sleep 0.3
	kill -INT "$spid"
	wait "$spid" || true
	strace -f -qq -e trace=fdatasync,fsync -p "$pid" -o "$HS_T/st.sync" 3>&- &
	spid=$!
	sleep 0.5
	for i in $(seq 20); do
		app t25-sync <<<"s$i" || false
	done
	kill -INT "$spid"
	wait "$spid" || true
	fa=$(grep -cE 'f(data)?sync\(' "$HS_T/st.async" || true)
	fs=$(grep -cE 'f(data)?sync\(' "$HS_T/st.sync" || true)
	echo "# fsyncs: 20 async appends ($n_async nosync commits) $fa, 20 sync appends $fs" >&3
	# One append at a time: each sync append waits for its own fsync; the
	# async ones share the 100 ms background syncs.
	[ "$fs" -ge 20 ]
	[ "$fa" -lt "$fs" ]
}

@test "sync and async appends in the same turns: both acknowledged and readable" {
	snap
	seq 1 20000 | app --batch 100 --max-inflight 4 t25-sync &
	p1=$!
	seq 1 20000 | app --batch 100 --max-inflight 4 t25-async &
	p2=$!
	wait "$p1"
	wait "$p2"
	[ "$(delta store_frames_nosync)" -ge 1 ]
	[ "$(delta commits_sync)" -ge 1 ]
	run -0 timeout 30 "$HS_BIN/hs-cat" t25-sync
	[ "${lines[-1]}" = 20000 ]
	run -0 timeout 30 "$HS_BIN/hs-cat" t25-async
	[ "${lines[-1]}" = 20000 ]
}

# one_by_one STREAM N: append N records one at a time (each waits for its
# acknowledgement, read back as its --print-lsn line); prints the elapsed ms.
one_by_one() {
	local i lsn t0 t1 cpid
	t0=$(date +%s%N)
	coproc APP { timeout 120 "$HS_BIN/hs-append" --linger 0 --batch 1 --print-lsn "$1" 3>&-; }
	cpid=$APP_PID # bash unsets APP_PID once the coprocess is reaped
	for ((i = 1; i <= $2; i++)); do
		echo "r$i" >&"${APP[1]}"
		read -r -t 10 lsn <&"${APP[0]}" || return 1
	done
	exec {APP[1]}>&-
	wait "$cpid" || return 1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

@test "throughput of one-at-a-time appends, sync vs async (timing not asserted)" {
	local n=400 ms_s ms_a c_s c_a
	snap
	ms_s=$(one_by_one t25-sync $n)
	c_s=$(delta commits_sync)
	snap
	ms_a=$(one_by_one t25-async $n)
	c_a=$(delta commits_sync)
	echo "# $n appends one at a time: sync ${ms_s} ms" \
		"($((n * 1000 / (ms_s + 1)))/s, $c_s synced commits)," \
		"async ${ms_a} ms ($((n * 1000 / (ms_a + 1)))/s, $c_a synced commits)" >&3
	[ "$c_s" -ge "$n" ]
	[ "$c_a" -eq 0 ]
}

@test "hs-serve --durability sets the default of new streams; its peers stay sync" {
	hs_daemon_start serve2 "$HS_BIN/hs-serve" --data "$HS_T/s2.d" \
		--listen "unix:$HS_T/s2.sock" --durability async
	run -0 admin -a "unix:$HS_T/s2.sock" stream create t25-d2
	run -0 admin -a "unix:$HS_T/s2.sock" stream create t25-d2s --durability sync
	run -0 admin -a "unix:$HS_T/s2.sock" stream info t25-d2 t25-d2s
	[ "$(grep -cE '^durability +async$' <<<"$output")" -eq 1 ]
	[ "$(grep -cE '^durability +sync$' <<<"$output")" -eq 1 ]
	# The spawned peer runs --durability sync (per-stream NOSYNC does the rest).
	spid=$(hs_daemon_pid serve2)
	kids=$(cat "/proc/$spid/task/$spid/children")
	[ -n "$kids" ]
	for k in $kids; do
		args=$(tr '\0' ' ' <"/proc/$k/cmdline")
		[[ "$args" == *"--durability sync"* ]] || { echo "child: $args"; false; }
	done
	run -0 app -a "unix:$HS_T/s2.sock" t25-d2 <<<"x"
	hs_daemon_stop serve2
}
