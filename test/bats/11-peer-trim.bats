#!/usr/bin/env bats
# 11-peer-trim: TRIM and time partitions.  A peer with one-second partitions
# gets writes in several partitions; a trim past all but the last drops the
# older partitions (column families) whole, reads below the trim point get a
# TRIM gap, and RocksDB's own ldb confirms the column families are gone.

load helpers

setup_file() {
	hs_tmpdir
}

teardown_file() {
	hs_daemon_stop t
	local st=$?
	[ "$st" -eq 0 ] && hs_tmpdir_remove
	return "$st"
}

stat_of() { # KEY: print the value of one STATS key
	ptool -a "$PEER_ADDR" stats | sed -n "s/^$1 //p"
}

@test "a trim drops whole partitions; reads below it report a TRIM gap" {
	command -v ldb >/dev/null || skip "ldb (rocksdb-tools) is not installed"
	# Started here, not in setup_file: this test stops it and must see its
	# exit status.
	peer_start t --partition-duration 1s
	for i in 0 1 2 3; do
		run ptool -a "$PEER_ADDR" store --log 1 --epoch 1 --esn-start $((i * 1000 + 1)) \
			--count 1000 --run 100
		[ "$status" -eq 0 ]
		# Another log, so a partition is only dropped once every log in it
		# is trimmed past it.
		run ptool -a "$PEER_ADDR" store --log 2 --epoch 1 --esn-start $((i + 1)) --count 1 --run 1
		[ "$status" -eq 0 ]
		[ "$i" -lt 3 ] && sleep 1.3
	done
	parts=$(stat_of partitions)
	[ "$parts" -ge 4 ] || { echo "partitions: $parts"; false; }
	names_before=$(stat_of partition_names)

	run ptool -a "$PEER_ADDR" trim --log 1 --lsn e1n3000
	[ "$status" -eq 0 ]
	# Log 2 still holds records in every partition: nothing may go yet.
	sleep 0.5
	[ "$(stat_of partitions_dropped)" -eq 0 ]
	run ptool -a "$PEER_ADDR" trim --log 2 --lsn e1n3
	[ "$status" -eq 0 ]
	# The first three partitions hold only trimmed records of both logs; the
	# fourth holds e1n3001.. (partitions rolled since then stay too).
	for _ in $(seq 50); do
		[ "$(stat_of partitions_dropped)" -ge 3 ] && break
		sleep 0.1
	done
	[ "$(stat_of partitions_dropped)" -eq 3 ]
	names_after=$(stat_of partition_names)
	set -- $names_before
	for n in "${@:1:3}"; do
		[[ " $names_after " != *" $n "* ]] || { echo "$n not dropped"; false; }
	done
	for n in "${@:4}"; do
		[[ " $names_after " == *" $n "* ]] || { echo "$n dropped"; false; }
	done

	# Reads: a TRIM gap, then the records that are left.
	run ptool -a "$PEER_ADDR" release --log 1 --lsn e1n4000
	[ "$status" -eq 0 ]
	run ptool -a "$PEER_ADDR" read --log 1 --from e1n1 --until e1n4000 --format lsn
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "GAP e1n1 e1n3000 TRIM" ]
	[ "${lines[1]}" = e1n3001 ]
	[ "${#lines[@]}" -eq 1001 ]
	run ptool -a "$PEER_ADDR" meta --log 1
	[[ "$output" == *"trim=e1n3000"* ]]

	# After a clean stop, RocksDB itself lists only the surviving families.
	hs_daemon_stop t
	run timeout 30 ldb --db="$HS_T/t.d" list_column_families
	[ "$status" -eq 0 ]
	echo "ldb: $output"
	for n in $names_before; do
		if [[ " $names_after " == *" $n "* ]]; then
			[[ "$output" == *"$n"* ]] || { echo "live $n missing"; false; }
		else
			[[ "$output" != *"$n"* ]] || { echo "dropped $n still there"; false; }
		fi
	done

	# The trim survives a restart.
	peer_start t --partition-duration 1s
	run ptool -a "$PEER_ADDR" read --log 1 --from e1n1 --until e1n3002 --format lsn
	[ "$status" -eq 0 ]
	[ "$output" = "GAP e1n1 e1n3000 TRIM
e1n3001
e1n3002" ]
	hs_daemon_stop t
}
