#!/usr/bin/env bats
# 14-peer-diskfull: a full disk under hs-peer is a clear error, not a crash,
# and loses nothing acknowledged (DESIGN.md §10.1).  The data directory is a
# small tmpfs: memtables live in memory, so the WAL is what fills it.
# Normally the peer refuses new records (STORED -HS_ENOSPC) once less than
# --min-free is available and stays up; with --min-free 0 (or a disk that
# fills faster than the once-a-second check) RocksDB itself hits ENOSPC: the
# peer must log "No space left on device" naming its store directory and the
# file it failed on, stop acknowledging and exit 74 (never die by a signal);
# once the disk is grown, it must restart on the same data and serve every
# acknowledged record.  Needs root (mount); skipped otherwise.

load helpers

setup_file() {
	hs_tmpdir
	if [ "$(id -u)" -ne 0 ]; then
		HS_MOUNT_SKIP="not root: cannot mount a tmpfs"
	else
		mkdir "$HS_T/probe"
		if mount -t tmpfs -o size=1m tmpfs "$HS_T/probe" 2>"$HS_T/mount.err"; then
			umount "$HS_T/probe"
		else
			HS_MOUNT_SKIP="cannot mount a tmpfs (no CAP_SYS_ADMIN?): $(head -n 1 "$HS_T/mount.err")"
		fi
	fi
	export HS_MOUNT_SKIP
}

teardown_file() {
	local st=0 d
	hs_daemon_stop serve || st=1
	for d in small big low full; do
		hs_daemon_stop "$d" || st=1
		# Always unmount, even after a failure; a lazy unmount cannot be
		# refused by a straggler still holding a file open.
		if mountpoint -q "$HS_T/$d.d"; then
			umount "$HS_T/$d.d" 2>/dev/null || umount -l "$HS_T/$d.d" || st=1
		fi
	done
	[ "$st" -eq 0 ] && hs_tmpdir_remove
	return "$st"
}

# diskfull NAME SIZE MIN_ACKED: mount a tmpfs of SIZE as the data directory
# of peer NAME, store until the disk is full, check how the peer failed,
# grow the disk, restart the peer and check that at least MIN_ACKED records
# were acknowledged and are all there.
diskfull() {
	local name=$1 dir=$HS_T/$1.d

	[ -z "$HS_MOUNT_SKIP" ] || skip "$HS_MOUNT_SKIP"
	# The mount point is the peer's data directory itself (see peer_start).
	mkdir "$dir"
	mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$dir"
	# No early refusal: this is the last-resort path.
	peer_start "$name" --min-free 0
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 1 --count 10000000 --run 100 \
		--inflight 4 --acks "$HS_T/$name.acks"
	echo "$output"
	# The peer went away mid-stream without replying to what it could not
	# store (whether the client sees EOF or a reset depends on timing).
	[ "$status" -ne 0 ]
	[[ "$output" == *"waiting for STORED: "*@(peer closed the connection|Connection reset by peer)* ]]
	hs_daemon_wait_exit "$name" 20
	# EX_IOERR, not 128 + SIGABRT (see the info log level in store.c).
	[ "$HS_EXIT" -eq 74 ] || { echo "# exit status $HS_EXIT" >&3; hs_show "$HS_T/$name.err"; false; }
	[ ! -e "$HS_T/$name.pid" ]
	# Which store, what it was doing, which file, and why.
	grep -Eq "error: store '$dir' failed: commit: .*No space left on device.* $dir/[0-9]+\.(log|sst)" \
		"$HS_T/$name.err"
	grep -q 'error: store failed: .*No space left on device.*; exiting' "$HS_T/$name.err"

	# Grow the disk: the WAL is replayed and every ack is there.
	mount -o remount,size=256m "$dir"
	peer_start "$name" --min-free 0
	run check_acks "$name" "$HS_T/$name.acks"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^acked\ ([0-9]+)\ missing\ 0\ bad\ 0$ ]]
	[ "${BASH_REMATCH[1]}" -ge "$3" ]
	# It accepts writes again.
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 2 --count 1000 --run 100
	[ "$status" -eq 0 ]
	hs_daemon_stop "$name"
	umount "$dir"
}

# 24 MiB hold about 180k records of 100 bytes in the first WAL, which fills
# the disk long before the 64 MiB memtable is switched.
@test "full disk while appending to the WAL: exit 74, clear error, nothing acknowledged lost" {
	diskfull small 24m 100000
}

# 100 MiB: usually the first memtable is switched and flushed to an SST
# (written while the second WAL grows) before the disk fills; exactly when
# the disk fills varies from run to run (592,600 acknowledged records were
# seen once), so only a lower bound well above the small case is asserted.
@test "full disk after a memtable flush: exit 74, clear error, nothing acknowledged lost" {
	diskfull big 100m 300000
}

# The graceful path: below --min-free the peer answers ordinary runs with
# "no space left on device", writes nothing and stays up; it takes records
# again once there is room (checked every second).
@test "nearly full disk: new records refused (ENOSPC), the peer stays up, takes them again with room" {
	local dir=$HS_T/low.d pid
	[ -z "$HS_MOUNT_SKIP" ] || skip "$HS_MOUNT_SKIP"
	mkdir "$dir"
	mount -t tmpfs -o size=64m,mode=0700 tmpfs "$dir"
	# 64 MiB is below --min-free 256M: refused from the start.
	peer_start low --min-free 256m
	pid=$(hs_daemon_pid low)
	grep -q "disk of $dir nearly full: [0-9]* bytes free, below --min-free 256MiB; refusing new records" \
		"$HS_T/low.err"
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 1 --count 1000 --run 100
	[ "$status" -eq 74 ]
	[[ "$output" == *"stored 0 records"* ]]
	[[ "$output" == *"refused: no space left on device"* ]]
	hs_alive "$pid"
	[ "$(ptool -a "$PEER_ADDR" stats | sed -n 's/^low_space //p')" = 1 ]
	# Room again: within a second or two it takes records.
	mount -o remount,size=512m "$dir"
	local deadline=$((SECONDS + 10))
	until grep -q "disk of $dir has [0-9]* bytes free again; accepting new records" \
		"$HS_T/low.err" || [ $SECONDS -ge $deadline ]; do
		sleep 0.1
	done
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 1 --count 1000 --run 100
	[ "$status" -eq 0 ]
	hs_daemon_stop low
	# Crossing the limit while running: ~67 MB of records against ~40 MB
	# of headroom (tmpfs is fast: most are stored before the next check);
	# then new records are refused, not a crash, and everything
	# acknowledged is there.
	peer_start low --min-free 470m
	pid=$(hs_daemon_pid low)
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 2 --count 600000 --run 1000 \
		--inflight 4 --acks "$HS_T/low.acks"
	sleep 1.5
	run ptool -a "$PEER_ADDR" store --log 1 --epoch 3 --count 1000 --run 100
	[ "$status" -eq 74 ]
	[[ "$output" == *"stored 0 records"* ]]
	[[ "$output" == *"refused: no space left on device"* ]]
	hs_alive "$pid"
	grep -q "disk of $dir nearly full" "$HS_T/low.err"
	[ "$(grep -c 'store failed' "$HS_T/low.err")" = 0 ]
	run check_acks low "$HS_T/low.acks"
	echo "$output"
	[[ "$output" =~ ^acked\ ([0-9]+)\ missing\ 0\ bad\ 0$ ]]
	[ "${BASH_REMATCH[1]}" -ge 100000 ]
	hs_daemon_stop low
	umount "$dir"
}

# hs-serve over a peer that is nearly full: the append stalls (never an
# error), the peer is tried again by a real wave once per 10 s period
# (FULL_AVOID_MS) and refuses once per period, not in a loop; when the disk
# has room again the next period's wave stores it and the client gets its
# acknowledgement.
@test "hs-serve over a nearly full peer: the append waits, one refusal per 10 s, stored once there is room" {
	local dir=$HS_T/full.d deadline
	[ -z "$HS_MOUNT_SKIP" ] || skip "$HS_MOUNT_SKIP"
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	mkdir "$dir"
	mount -t tmpfs -o size=64m,mode=0700 tmpfs "$dir"
	peer_start full --node-id 1 --min-free 256m
	serve_start --peer "$PEER_ADDR" --replication 1
	( timeout 60 "$HS_BIN/hs-append" -t 40s -c f <(echo waited) >"$HS_T/f.out" 2>"$HS_T/f.err"
	  echo $? >"$HS_T/f.rc" ) 3>&- &
	# Two periods: two warnings, two refused runs (the second about 10 s
	# after the first).
	deadline=$((SECONDS + 20))
	until [ "$(grep -c 'disk nearly full; left out of copysets for 10 s' "$HS_T/serve.err")" = 2 ] ||
		[ $SECONDS -ge $deadline ]; do
		sleep 0.1
	done
	[ "$(ptool -a "$PEER_ADDR" stats | sed -n 's/^runs_refused_nospace //p')" = 2 ]
	[ ! -s "$HS_T/f.rc" ] || { cat "$HS_T/f.err"; false; }
	mount -o remount,size=512m "$dir"
	deadline=$((SECONDS + 20))
	while ! [ -s "$HS_T/f.rc" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	[ "$(cat "$HS_T/f.rc")" = 0 ] || { cat "$HS_T/f.err"; false; }
	run -0 timeout 30 "$HS_BIN/hs-cat" f
	[ "$output" = waited ]
	hs_daemon_stop serve
	hs_daemon_stop full
	umount "$dir"
}
