#!/usr/bin/env bats
# 52-scen-corrupt: a peer's RocksDB files are damaged while it is down
# (TESTING.md "Corruption"): a flipped byte in its newest data .sst, or its
# WAL cut in half.  The peer must refuse to serve bad data (block checksums;
# refusing to start is allowed), and with R=2 over 4 peers the cluster loses
# nothing: every acknowledged record is read from its other copy.

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	cl_teardown
}

# busiest_peer: the peer whose WAL holds the most bytes (it holds records).
busiest_peer() {
	local i best=1 max=-1 n
	for i in $(seq "$CL_NPEERS"); do
		n=$(cat "$HS_T/p$i.d"/*.log 2>/dev/null | wc -c)
		[ "$n" -gt "$max" ] && max=$n best=$i
	done
	echo "$best"
}

flip_byte() { # FILE OFFSET
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x5a]))
' "$1" "$2"
}

# restart_damaged I: start peer I again; it may refuse to (then it stays
# down, its refusal on record), never serve what it cannot verify.
restart_damaged() {
	if cl_peer_start "$1"; then
		echo "# p$1 restarted on its damaged files" >&3
	else
		echo "# p$1 refused to start on its damaged files" >&3
	fi
}

load_then_kill() {
	cl_need_r 2
	cl_peers_start 4
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)" --inflight 8
	cl_append_start 2 "$(cl_addr s)" --batch 4 --inflight 8
	cl_wait_acks 1000 20
	victim=$(busiest_peer)
	cl_kill9 "p$victim"
}

# direct_read I: if peer I runs, read its copies of the stream directly
# (hs-ptool, every epoch, released or not): whatever it returns must be
# what was written there - a payload acknowledged at another LSN, or one
# nobody wrote, is bad data served.  A read error is a refusal: allowed.
direct_read() {
	local log st=0
	cl_running "p$1" || return 0
	log=$(timeout 10 "$HS_BIN/hs-admin" -a "$(cl_addr s)" stream info "$CL_STREAM" |
		awk '$1 == "log" { print $2 }')
	[ -n "$log" ]
	timeout 30 "$HS_TOOLS/hs-ptool" -a "$(cl_peer_addr "$1")" read --log "$log" \
		--ignore-released --idle-exit 1s --format line >"$HS_T/direct" 2>"$HS_T/direct.err" ||
		st=$?
	echo "# direct read of p$1: status $st, $(wc -l <"$HS_T/direct") lines;" \
		"$(tail -n 1 "$HS_T/direct.err")" >&3
	awk -F'\t' -v d="$HS_T/direct" '
		FILENAME != d {
			split($0, f, " ")
			if (f[1] == "invoke") inv[f[2]] = 1
			if (f[1] == "ok") ack[f[3]] = f[2]
			next
		}
		$2 == "" { next }
		!($2 in inv) { bad++; print "# not written: " $0; next }
		($2 in ack) && ack[$2] != $1 { bad++; print "# acknowledged at " ack[$2] ": " $0 }
		END { exit bad > 0 }
	' "$HS_T"/w[0-9] "$HS_T/direct" >&3
}

finish() {
	cl_wait_acks 400 20
	cl_append_stop
	direct_read "$victim"
	# Exiting on what it cannot verify is a refusal too.
	if [ -f "$HS_T/p$victim.bgpid" ] && ! cl_running "p$victim"; then
		hs_daemon_wait_exit "p$victim" 1
		echo "# p$victim exited (status $HS_EXIT) on its damaged files" >&3
	fi
	cl_check "$(cl_addr s)" 1400
	cl_stop s
}

@test "a flipped byte in a down peer's newest .sst: refused, nothing lost" {
	command -v ldb >/dev/null && command -v sst_dump >/dev/null ||
		skip "ldb/sst_dump (rocksdb-tools) are not installed"
	load_then_kill
	d=$HS_T/p$victim.d
	# Flush its partitions into .sst files (CompactRange flushes first).
	for cf in $(timeout 30 ldb --db="$d" list_column_families 2>/dev/null |
		sed -n 's/.*{\(.*\)}.*/\1/p' | tr -d ' ' | tr ',' '\n' | grep '^p'); do
		timeout 60 ldb --db="$d" --try_load_options --column_family="$cf" compact >/dev/null
	done
	sst=$(ls -S "$d"/*.sst | head -n 1)
	[ -f "$sst" ]
	cf=$(timeout 30 sst_dump --file="$sst" --show_properties 2>/dev/null |
		sed -n 's/^ *column family name: //p')
	flip_byte "$sst" $(($(stat -c %s "$sst") / 3))
	# The damage is real: RocksDB's own scan finds it (sst_dump swallows it).
	timeout 60 ldb --db="$d" --try_load_options --column_family="$cf" scan 2>&1 |
		grep -q 'Corruption'
	restart_damaged "$victim"
	finish
}

@test "a down peer's WAL cut in half: refused or forgotten, nothing lost" {
	load_then_kill
	wal=$(ls -t "$HS_T/p$victim.d"/*.log | head -n 1)
	[ -s "$wal" ]
	truncate -s $(($(stat -c %s "$wal") / 2)) "$wal"
	restart_damaged "$victim"
	finish
}
