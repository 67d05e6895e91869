#!/usr/bin/env bats
# 60-offload: hs-offload end to end against a real hs-serve - segments in a
# directory (file://) and in S3 (s3rver behind the SigV4-checking proxy of
# test/s3, read back and listed with Debian's awscli), the manifest and the
# Tier1 trim, kill -9 after each step and a re-run (no loss, no duplicate,
# no orphan after the sweep), --lock, --dry-run, policies from the stream
# record (offload-after, offload-size, retention; flags override),
# retention, encryption and damaged segments, the sweep of deleted
# streams' objects, and hs-offload through an hs-serve that redirects to
# the stream's sequencer (two hs-serve on shared peers) and -a A,B.
#
# What is NOT tested here because it is not built yet: hs-serve serving
# reads below the Tier1 trim point from segments.  After an offload,
# hs-cat shows a TRIM gap for the offloaded range (tested as what is true);
# the segments' contents are checked directly: plain segment blocks hold
# the payloads verbatim, so every offloaded record is found exactly once by
# grep in the objects the manifest names, and --verify checks each object's
# BLAKE2b hash against the manifest.

load helpers

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	[ -x "$HS_BIN/hs-offload" ] || skip "no hs-offload built"
	hs_tmpdir
	serve_start
	hs_s3_start || return 1
	# WebHDFS: a protocol fake (test/webhdfs/fake.py), not Hadoop.
	python3 "$TOP/test/webhdfs/fake.py" --root "$HS_T/hdfs" --user tester \
		</dev/null >"$HS_T/fake.out" 2>"$HS_T/fake.err" 3>&- &
	echo $! >"$HS_T/fake.pid"
	local i
	WH_ADDR=
	for i in $(seq 100); do
		WH_ADDR=$(sed -n 's/^webhdfs-fake listening on //p' "$HS_T/fake.out")
		[ -n "$WH_ADDR" ] && break
		sleep 0.1
	done
	export HS_T HS_ADDR S3_ADDR WH_ADDR
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	hs_s3_stop
	[ -s "$HS_T/fake.pid" ] && kill "$(cat "$HS_T/fake.pid")" 2>/dev/null
	hs_daemon_stop serve
	local st=$?
	hs_tmpdir_remove
	return $st
}

# The two hs-serve and three peers of the redirect test, if a failure left
# them running.
teardown() {
	local n
	[ -n "${HS_T:-}" ] || return 0
	for n in ra rb rp1 rp2 rp3; do
		hs_daemon_stop "$n" || true
	done
}

admin() {
	timeout 30 "$HS_BIN/hs-admin" "$@"
}

off() {
	timeout 60 "$HS_BIN/hs-offload" "$@"
}

# A fresh destination directory; prints its file:// URL.
newdir() {
	mkdir -p "$HS_T/$1"
	echo "file://$HS_T/$1"
}

# append NAME TAG N [FIRST]: records TAG-000001.. (create the stream).
append() {
	seq -f "$2-%06.0f" "${4:-1}" "$(( ${4:-1} + $3 - 1 ))" |
		timeout 30 "$HS_BIN/hs-append" -c "$1"
}

# One field of `stream info` ("-" when unset).
info() {
	admin stream info "$1" | awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print }'
}

# Every record tag found in the segment objects under DIR: one per line.
tags() {
	find "$1" -path '*/seg/*' -type f -print0 | xargs -0 -r grep -aoh "$2-[0-9]\{6\}"
}

nsegs() {
	find "$1" -path '*/seg/*' -type f | wc -l
}

@test "usage: no destination is 64; --help lists the flags; a bad duration is 64" {
	run --separate-stderr env -u HS_TIER_URL "$HS_BIN/hs-offload"
	[ "$status" -eq 64 ]
	[[ $stderr == *"--to URL"* ]]
	run --separate-stderr "$HS_BIN/hs-offload" --to file:///tmp --older-than soon
	[ "$status" -eq 64 ]
	run "$HS_BIN/hs-offload" --help
	[ "$status" -eq 0 ]
	[[ $output == *"--dry-run"* ]]
}

@test "errors: server unreachable 69, missing directory 66, bad key file 66" {
	run --separate-stderr off -a "unix:$HS_T/nothing.sock" --to "file://$HS_T"
	[ "$status" -eq 69 ]
	[ -n "$stderr" ]
	run --separate-stderr off --to "file://$HS_T/no/such/dir"
	[ "$status" -eq 66 ]
	run --separate-stderr off --to "file://$HS_T" --key-file "$HS_T/no-key"
	[ "$status" -eq 66 ]
	[[ $stderr == *no-key* ]]
}

@test "file: one run offloads, publishes, trims Tier1, silently; a second adds a segment" {
	url=$(newdir t-fa)
	append fa fa 1000
	run --separate-stderr off --to "$url" --stream fa --older-than 0
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	[ "$(info fa offload)" = e1n1000 ]
	[ "$(info fa tier1-trim)" = e1n1000 ]
	[ "$(info fa tier2)" = "1 segments" ]
	[ "$(nsegs "$HS_T/t-fa")" -eq 1 ]
	[ "$(tags "$HS_T/t-fa" fa | sort -u | wc -l)" -eq 1000 ]
	[ "$(tags "$HS_T/t-fa" fa | wc -l)" -eq 1000 ]
	# The read path does not serve Tier2 yet: the range is a TRIM gap.
	run --separate-stderr timeout 30 "$HS_BIN/hs-cat" fa
	[ "$status" -eq 0 ]
	[ -z "$output" ]

	append fa fa 500 1001
	run --separate-stderr off --to "$url" --stream fa --older-than 0 -v
	[ "$status" -eq 0 ]
	[[ $stderr == *"1 streams, 1 segments, 500 records"* ]]
	[ "$(info fa offload)" = e1n1500 ]
	[ "$(info fa tier2)" = "2 segments" ]
	[ "$(tags "$HS_T/t-fa" fa | sort -u | wc -l)" -eq 1500 ]
	[ "$(tags "$HS_T/t-fa" fa | wc -l)" -eq 1500 ]
	run --separate-stderr off --to "$url" --stream fa --verify -v
	[ "$status" -eq 0 ]
	[[ $stderr == *"2 segments verified"* ]]
	# Nothing new: a run changes nothing.
	run --separate-stderr off --to "$url" --stream fa --older-than 0
	[ "$status" -eq 0 ]
	[ "$(nsegs "$HS_T/t-fa")" -eq 2 ]
}

@test "--min-size: no segment smaller than SIZE" {
	url=$(newdir t-ms)
	append ms ms 100
	run --separate-stderr off --to "$url" --stream ms --older-than 0 --min-size 2k
	[ "$status" -eq 0 ]
	[ "$(info ms offload)" = - ]
	[ "$(nsegs "$HS_T/t-ms")" -eq 0 ]
	append ms ms 200 101
	run --separate-stderr off --to "$url" --stream ms --older-than 0 --min-size 2k
	[ "$status" -eq 0 ]
	[ "$(info ms offload)" = e1n300 ]
}

@test "--segment-size splits a run into several segments" {
	url=$(newdir t-ss)
	append ss ss 3000
	run --separate-stderr off --to "$url" --stream ss --older-than 0 --segment-size 10k
	[ "$status" -eq 0 ]
	[ "$(nsegs "$HS_T/t-ss")" -ge 3 ]
	[ "$(info ss offload)" = e1n3000 ]
	[ "$(tags "$HS_T/t-ss" ss | wc -l)" -eq 3000 ]
	[ "$(tags "$HS_T/t-ss" ss | sort -u | wc -l)" -eq 3000 ]
}

@test "policies: offload-after from the stream record, alter, flags override" {
	url=$(newdir t-po)
	admin stream create po --offload-after 1h
	append po po 10
	run --separate-stderr off --to "$url" --stream po
	[ "$status" -eq 0 ]
	[ "$(info po offload)" = - ]
	[ "$(nsegs "$HS_T/t-po")" -eq 0 ]
	admin stream alter po --offload-after 1ms --retention 30d
	[ "$(info po offload-after)" = 1ms ]
	[ "$(info po retention)" = 30d ]
	sleep 0.1
	# A bare run, as from cron: the destination from HS_TIER_URL.
	HS_TIER_URL=$url run --separate-stderr off --stream po
	[ "$status" -eq 0 ]
	[ -z "$output$stderr" ]
	[ "$(info po offload)" = e1n10 ]
	# offload-after 0 is never, unless --older-than says otherwise.
	admin stream create pn
	append pn pn 5
	run off --to "$url" --stream pn
	[ "$status" -eq 0 ]
	[ "$(info pn offload)" = - ]
	run off --to "$url" --stream pn --older-than 0
	[ "$status" -eq 0 ]
	[ "$(info pn offload)" = e1n5 ]
	run --separate-stderr admin stream alter nosuch --retention 1d
	[ "$status" -eq 66 ]
	run --separate-stderr admin stream alter po
	[ "$status" -eq 64 ]
}

@test "policies: offload-size from create and alter, applied by a bare run; flags override" {
	url=$(newdir t-oz)
	admin stream create oz --offload-size 4k
	[ "$(info oz offload-size)" = 4KiB ]
	run -0 admin stream info oz --json
	[[ $output == *'"offload_size":4096,'* ]]
	append oz oz 100                          # 900 payload bytes: below 4k
	HS_TIER_URL=$url run --separate-stderr off --stream oz
	[ "$status" -eq 0 ]
	[ -z "$output$stderr" ]
	[ "$(info oz offload)" = - ]
	[ "$(nsegs "$HS_T/t-oz")" -eq 0 ]
	# --offload-size overrides the stream's; age plays no part.
	run -0 off --to "$url" --stream oz --offload-size 900
	[ "$(info oz offload)" = e1n100 ]
	append oz oz 500 101                      # 4500 bytes: over 4k
	HS_TIER_URL=$url run --separate-stderr off --stream oz
	[ "$status" -eq 0 ]
	[ -z "$output$stderr" ]
	[ "$(info oz offload)" = e1n600 ]
	[ "$(tags "$HS_T/t-oz" oz | sort -u | wc -l)" -eq 600 ]
	# --offload-size 0: no size trigger this time.
	append oz oz 500 601
	run -0 off --to "$url" --stream oz --offload-size 0
	[ "$(info oz offload)" = e1n600 ]
	run -0 off --to "$url" --stream oz --offload-size 1M --dry-run
	[ -z "$output" ]
	run -0 off --to "$url" --stream oz --dry-run
	[[ $output == "offload oz e1n601..e1n1100 records 500 bytes 4500" ]]
	admin stream alter oz --offload-size 1M
	[ "$(info oz offload-size)" = 1MiB ]
	[ "$(info oz offload-after)" = never ]
	HS_TIER_URL=$url run -0 off --stream oz
	[ "$(info oz offload)" = e1n600 ]
	# Both policies: the age one still works alone.
	admin stream alter oz --offload-after 1ms
	sleep 0.1
	HS_TIER_URL=$url run -0 off --stream oz
	[ "$(info oz offload)" = e1n1100 ]
	admin stream alter oz --offload-size 0
	[ "$(info oz offload-size)" = none ]
	run -0 admin stream info oz --json
	[[ $output == *'"offload_size":0,'* ]]
	run --separate-stderr admin stream alter oz --offload-size lots
	[ "$status" -eq 64 ]
	run --separate-stderr off --to "$url" --offload-size -1
	[ "$status" -eq 64 ]
	run -0 off --to "$url" --stream oz --verify
}

@test "--dry-run prints the plan and changes nothing" {
	url=$(newdir t-dr)
	append dr dr 100
	before=$(admin stream info dr)
	run --separate-stderr off --to "$url" --stream dr --older-than 0 --dry-run
	[ "$status" -eq 0 ]
	[ "$output" = "offload dr e1n1..e1n100 records 100 bytes 900" ]
	[ "$(admin stream info dr)" = "$before" ]
	[ -z "$(find "$HS_T/t-dr" -type f)" ]
}

@test "--lock: a second run exits 75 at once" {
	url=$(newdir t-lk)
	exec {lk}>"$HS_T/offload.lock"
	flock -n "$lk"
	SECONDS=0
	run --separate-stderr off --to "$url" --lock "$HS_T/offload.lock"
	exec {lk}>&-
	[ "$status" -eq 75 ]
	[[ $stderr == *"holds the lock"* ]]
	[ "$SECONDS" -le 2 ]
	run off --to "$url" --lock "$HS_T/offload.lock" --stream nosuch-none
	[ "$status" -eq 66 ]
}

# kill -9 right after STEP, then a normal run: everything offloaded once.
crash_and_rerun() {
	local step=$1 s=k$1 url
	url=$(newdir "t-$s")
	append "$s" "$s" 300
	run env HS_OFFLOAD_CRASH_AT="$step" "$HS_BIN/hs-offload" --to "$url" --stream "$s" \
		--older-than 0
	[ "$status" -eq 137 ]
	case $step in
	upload)
		[ "$(info "$s" offload)" = - ]
		[ "$(nsegs "$HS_T/t-$s")" -eq 1 ] ;;
	publish)
		[ "$(info "$s" offload)" = e1n300 ]
		[ "$(info "$s" tier1-trim)" = - ] ;;
	trim)
		[ "$(info "$s" offload)" = e1n300 ]
		[ "$(info "$s" tier1-trim)" = e1n300 ] ;;
	esac
	run --separate-stderr off --to "$url" --stream "$s" --older-than 0 --grace 0
	[ "$status" -eq 0 ]
	[ "$(info "$s" offload)" = e1n300 ]
	[ "$(info "$s" tier1-trim)" = e1n300 ]
	[ "$(info "$s" tier2)" = "1 segments" ]
	# No orphan left after the sweep, no record twice, none missing.
	[ "$(nsegs "$HS_T/t-$s")" -eq 1 ]
	[ "$(tags "$HS_T/t-$s" "$s" | wc -l)" -eq 300 ]
	[ "$(tags "$HS_T/t-$s" "$s" | sort -u | wc -l)" -eq 300 ]
	run off --to "$url" --stream "$s" --verify
	[ "$status" -eq 0 ]
}

@test "kill -9 after the upload, then a re-run: no loss, no duplicate, no orphan" {
	crash_and_rerun upload
}

@test "kill -9 after the publish, then a re-run: Tier1 trimmed, nothing twice" {
	crash_and_rerun publish
}

@test "kill -9 after the trim, then a re-run: nothing more to do" {
	crash_and_rerun trim
}

@test "the sweep keeps young orphans (grace) and deletes old ones" {
	url=$(newdir t-sw)
	append sw sw 20
	run env HS_OFFLOAD_CRASH_AT=upload "$HS_BIN/hs-offload" --to "$url" --stream sw \
		--older-than 0
	[ "$status" -eq 137 ]
	run off --to "$url" --stream sw --sweep
	[ "$status" -eq 0 ]
	[ "$(nsegs "$HS_T/t-sw")" -eq 1 ]
	run off --to "$url" --stream sw --sweep --grace 0 --dry-run
	[ "$status" -eq 0 ]
	[[ $output == "sweep sw logs/"*"/seg/"* ]]
	[ "$(nsegs "$HS_T/t-sw")" -eq 1 ]
	run off --to "$url" --stream sw --sweep --grace 0
	[ "$status" -eq 0 ]
	[ "$(nsegs "$HS_T/t-sw")" -eq 0 ]
	[ "$(info sw offload)" = - ]
}

@test "the sweep deletes a deleted stream's objects after the grace, not before" {
	url=$(newdir t-ds)
	append dsx dsx 20
	append dsk dsk 20
	run -0 off --to "$url" --stream dsx --older-than 0
	run -0 off --to "$url" --stream dsk --older-than 0
	[ "$(nsegs "$HS_T/t-ds")" -eq 2 ]
	gone=$(printf 'logs/%016x/' "$(info dsx log)")
	[ -d "$HS_T/t-ds/$gone" ]
	admin stream delete -f dsx
	# Younger than the grace period (1h by default): kept.
	run --separate-stderr off --to "$url" --sweep
	[ "$status" -eq 0 ]
	[ "$(nsegs "$HS_T/t-ds")" -eq 2 ]
	# A run restricted by --stream does not know every live log: kept.
	run -0 off --to "$url" --sweep --grace 0 --stream 'ds*'
	[ "$(nsegs "$HS_T/t-ds")" -eq 2 ]
	run -0 off --to "$url" --sweep --grace 0 --dry-run
	[[ $output == "sweep - $gone"seg/* ]]
	[ "$(nsegs "$HS_T/t-ds")" -eq 2 ]
	run --separate-stderr off --to "$url" --sweep --grace 0 -v
	[ "$status" -eq 0 ]
	# Its segment and its name object (logs/<log>/name).
	[[ $stderr == *"2 orphans swept"* ]]
	[ ! -e "$HS_T/t-ds/${gone}name" ]
	[ "$(nsegs "$HS_T/t-ds")" -eq 1 ]
	[ "$(tags "$HS_T/t-ds" dsx | wc -l)" -eq 0 ]
	[ "$(tags "$HS_T/t-ds" dsk | sort -u | wc -l)" -eq 20 ]
	run -0 off --to "$url" --stream dsk --verify
	# A normal run (not --sweep) sweeps deleted streams too.
	append dsy dsy 20
	run -0 off --to "$url" --stream dsy --older-than 0
	admin stream delete -f dsy
	run -0 off --to "$url" --grace 0 --older-than 1d
	[ "$(tags "$HS_T/t-ds" dsy | wc -l)" -eq 0 ]
	[ "$(nsegs "$HS_T/t-ds")" -eq 1 ]
}

@test "through a non-owner hs-serve: hs-offload follows the redirects; -a A,B fails over" {
	local i peers=() A=unix:$HS_T/ra.sock B=unix:$HS_T/rb.sock
	url=$(newdir t-rd)
	for i in 1 2 3; do
		peer_start "rp$i" --node-id "$i"
		peers+=(--peer "unix:$HS_T/rp$i.sock")
	done
	hs_daemon_start ra "$HS_BIN/hs-serve" --data "$HS_T/ra.d" --listen "$A" \
		"${peers[@]}" --replication 2
	hs_daemon_start rb "$HS_BIN/hs-serve" --data "$HS_T/rb.d" --listen "$B" \
		"${peers[@]}" --replication 2
	HS_ADDR=$A append rd rd 200               # A sequences rd: 1800 bytes
	HS_ADDR=$A admin stream alter rd --offload-size 1k
	epoch=$(HS_ADDR=$A info rd epoch)
	# Everything through B: TIER_INFO, the read, TIER_PUBLISH and the
	# trim are redirected to A; a bare run (size policy) from B.
	run --separate-stderr off -a "$B" --to "$url" -vv
	[ "$status" -eq 0 ]
	[[ $stderr == *"redirected"* ]]
	[ "$(HS_ADDR=$A info rd epoch)" = "$epoch" ]   # no takeover by B
	[ "$(HS_ADDR=$A info rd offload)" = "$(HS_ADDR=$A info rd last-released)" ]
	[ "$(HS_ADDR=$A info rd tier1-trim)" = "$(HS_ADDR=$A info rd offload)" ]
	[ "$(tags "$HS_T/t-rd" rd | sort -u | wc -l)" -eq 200 ]
	run -0 off -a "$B" --to "$url" --verify
	# Policies altered through B are what a run through A applies.
	HS_ADDR=$B admin stream alter rd --offload-size 0 --offload-after 1ms
	HS_ADDR=$A append rd rd 10 201
	sleep 0.1
	run -0 off -a "$A" --to "$url"
	[ "$(tags "$HS_T/t-rd" rd | sort -u | wc -l)" -eq 210 ]
	# A gone: -a A,B goes on through B, which takes the stream over.
	hs_daemon_kill9 ra
	HS_ADDR=$B append rd rd 10 211
	sleep 0.1
	run --separate-stderr off -a "$A,$B" --to "$url" --stream rd
	[ "$status" -eq 0 ]
	[ "$(tags "$HS_T/t-rd" rd | sort -u | wc -l)" -eq 220 ]
	[ "$(tags "$HS_T/t-rd" rd | wc -l)" -eq 220 ]
	run -0 off -a "$A,$B" --to "$url" --verify
	hs_daemon_stop rb
	for i in 1 2 3; do
		hs_daemon_stop "rp$i"
	done
}

@test "a tampered or truncated segment is an error naming the segment" {
	url=$(newdir t-tp)
	append tp tp 200
	off --to "$url" --stream tp --older-than 0
	seg=$(find "$HS_T/t-tp" -path '*/seg/*' -type f)
	key=${seg#"$HS_T/t-tp/"}
	printf 'X' | dd of="$seg" bs=1 seek=200 conv=notrunc status=none
	run --separate-stderr off --to "$url" --stream tp --verify
	[ "$status" -eq 74 ]
	[[ $stderr == *"'$key'"* ]]
	[[ $stderr == *damaged* ]]
	truncate -s 100 "$seg"
	run --separate-stderr off --to "$url" --stream tp --verify
	[ "$status" -ne 0 ]
	[[ $stderr == *"'$key'"* ]]
}

@test "encrypted segments hold no plaintext and verify without the key" {
	url=$(newdir t-en)
	head -c 32 /dev/urandom >"$HS_T/tier.key"
	append en en 100
	run --separate-stderr off --to "$url" --stream en --older-than 0 --key-file "$HS_T/tier.key"
	[ "$status" -eq 0 ]
	[ "$(nsegs "$HS_T/t-en")" -eq 1 ]
	[ "$(tags "$HS_T/t-en" en | wc -l)" -eq 0 ]
	run off --to "$url" --stream en --verify
	[ "$status" -eq 0 ]
	run --separate-stderr off --to "$url" --stream en --key-file "$HS_T/nokey"
	[ "$status" -eq 66 ]
}

@test "retention deletes Tier2 segments whose records are old enough" {
	url=$(newdir t-rt)
	append rt rt 50
	off --to "$url" --stream rt --older-than 0
	append rt rt 50 51
	off --to "$url" --stream rt --older-than 0
	[ "$(info rt tier2)" = "2 segments" ]
	sleep 0.1
	run --separate-stderr off --to "$url" --stream rt --retention 1ms --dry-run
	[ "$status" -eq 0 ]
	[ "$output" = "expire rt ..e1n100 objects 2" ]
	run --separate-stderr off --to "$url" --stream rt --retention 1ms -v
	[ "$status" -eq 0 ]
	[[ $stderr == *"2 objects expired"* ]]
	[ "$(info rt tier2)" = "0 segments" ]
	[ "$(info rt tier2-expired)" = e1n100 ]
	[ "$(nsegs "$HS_T/t-rt")" -eq 0 ]
}

@test "many segments fold into manifest objects; everything stays reachable" {
	url=$(newdir t-fo)
	append fo fo 9000
	run --separate-stderr off --to "$url" --stream fo --older-than 0 --segment-size 512
	[ "$status" -eq 0 ]
	[ "$(find "$HS_T/t-fo" -path "*/man/*" -type f | wc -l)" -eq 2 ]
	[ "$(info fo offload)" = e1n9000 ]
	n=$(nsegs "$HS_T/t-fo")
	[ "$n" -gt 64 ]
	[ "$(info fo tier2)" = "$n segments" ]
	run --separate-stderr off --to "$url" --stream fo --verify -v
	[ "$status" -eq 0 ]
	[[ $stderr == *"$n segments verified"* ]]
	run off --to "$url" --stream fo --sweep --grace 0
	[ "$(nsegs "$HS_T/t-fo")" -eq "$n" ]
	[ "$(tags "$HS_T/t-fo" fo | sort -u | wc -l)" -eq 9000 ]
	# Retention drops folded objects with all their segments too.
	sleep 0.1
	run --separate-stderr off --to "$url" --stream fo --retention 1ms
	[ "$status" -eq 0 ]
	[ "$(info fo tier2)" = "0 segments" ]
	[ "$(info fo tier2-expired)" = e1n9000 ]
	# Only the name object stays while the stream exists (for a rebuild).
	[ "$(find "$HS_T/t-fo" -type f)" = "$(find "$HS_T/t-fo" -type f -name name)" ]
	[ "$(find "$HS_T/t-fo" -type f -name name | wc -l)" -eq 1 ]
}

@test "a Tier1 trim before the offload: the next segment starts after it" {
	url=$(newdir t-ut)
	append ut ut 100
	admin stream trim ut --before e1n41
	run --separate-stderr off --to "$url" --stream ut --older-than 0
	[ "$status" -eq 0 ]
	[ "$(info ut offload)" = e1n100 ]
	[ "$(tags "$HS_T/t-ut" ut | wc -l)" -eq 60 ]
	[ "$(tags "$HS_T/t-ut" ut | head -1)" = ut-000041 ]
}

@test "offload across an epoch boundary (hs-serve restarted)" {
	# Its own hs-serve, started and stopped here so its exit status is known.
	local addr=unix:$HS_T/ep.sock
	url=$(newdir t-ep)
	hs_daemon_start ep "$HS_BIN/hs-serve" --data "$HS_T/ep.d" --listen "$addr"
	HS_ADDR=$addr append ep ep 100
	hs_daemon_stop ep
	hs_daemon_start ep "$HS_BIN/hs-serve" --data "$HS_T/ep.d" --listen "$addr"
	HS_ADDR=$addr append ep ep 50 101
	[ "$(HS_ADDR=$addr info ep tail)" = e2n51 ]
	run --separate-stderr off -a "$addr" --to "$url" --stream ep --older-than 0
	[ "$status" -eq 0 ]
	[ "$(HS_ADDR=$addr info ep offload)" = e2n50 ]
	[ "$(HS_ADDR=$addr info ep tier1-trim)" = e2n50 ]
	[ "$(tags "$HS_T/t-ep" ep | sort -u | wc -l)" -eq 150 ]
	run off -a "$addr" --to "$url" --stream ep --verify
	[ "$status" -eq 0 ]
	hs_daemon_stop ep
}

# Debian's awscli, isolated from any local configuration.
awsc() {
	AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null \
	AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	AWS_PAGER= timeout 60 /usr/bin/aws --endpoint-url "http://$S3_ADDR" "$@"
}

s3off() {
	AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=${SECRET:-S3RVER} \
		off --endpoint "http://$S3_ADDR" --path-style "$@"
}

@test "s3: offload, then the objects are listed and read back by awscli" {
	[ -n "$S3_ADDR" ] || skip "no S3 rig (node and test/s3/node_modules)"
	[ -x /usr/bin/aws ] || skip "Debian's awscli is not installed"
	append s3a s3a 400
	run --separate-stderr s3off --to s3://tier2/off --stream s3a --older-than 0
	[ "$status" -eq 0 ]
	[ "$(info s3a offload)" = e1n400 ]
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
	run awsc s3 ls --recursive s3://tier2/off/
	[ "$status" -eq 0 ]
	[ "$(grep -c '/seg/' <<<"$output")" -eq 1 ]
	key=$(awk '/\/seg\// { print $4 }' <<<"$output")
	awsc s3 cp "s3://tier2/$key" "$HS_T/s3seg.bin" >/dev/null
	[ "$(grep -aoh 's3a-[0-9]\{6\}' "$HS_T/s3seg.bin" | sort -u | wc -l)" -eq 400 ]
	run s3off --to s3://tier2/off --stream s3a --verify
	[ "$status" -eq 0 ]
	# A crash after the upload and a re-run over S3 too.
	append s3a s3a 100 401
	run env HS_OFFLOAD_CRASH_AT=upload AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER \
		"$HS_BIN/hs-offload" --endpoint "http://$S3_ADDR" --path-style \
		--to s3://tier2/off --stream s3a --older-than 0
	[ "$status" -eq 137 ]
	run s3off --to s3://tier2/off --stream s3a --older-than 0 --grace 0
	[ "$status" -eq 0 ]
	[ "$(info s3a offload)" = e1n500 ]
	run awsc s3 ls --recursive s3://tier2/off/
	[ "$(grep -c '/seg/' <<<"$output")" -eq 2 ]
}

@test "s3: a wrong secret is refused with 77 and changes nothing" {
	[ -n "$S3_ADDR" ] || skip "no S3 rig (node and test/s3/node_modules)"
	append s3w s3w 10
	SECRET=wrong run --separate-stderr s3off --to s3://tier2/off --stream s3w --older-than 0
	[ "$status" -eq 77 ]
	[[ $stderr == *403* ]]
	[ "$(info s3w offload)" = - ]
	[ "$(info s3w tier1-trim)" = - ]
}

@test "webhdfs (protocol fake): offload, crash after the upload, re-run, verify" {
	[ -n "$WH_ADDR" ] || skip "the WebHDFS fake did not start"
	export USER=tester
	append wh wh 200
	run --separate-stderr env HS_OFFLOAD_CRASH_AT=upload "$HS_BIN/hs-offload" \
		--to "webhdfs://$WH_ADDR/tier" --stream wh --older-than 0
	[ "$status" -eq 137 ]
	run --separate-stderr off --to "webhdfs://$WH_ADDR/tier" --stream wh --older-than 0 \
		--grace 0
	[ "$status" -eq 0 ]
	[ "$(info wh offload)" = e1n200 ]
	[ "$(nsegs "$HS_T/hdfs")" -eq 1 ]
	[ "$(tags "$HS_T/hdfs" wh | sort -u | wc -l)" -eq 200 ]
	run off --to "webhdfs://$WH_ADDR/tier" --stream wh --verify
	[ "$status" -eq 0 ]
}
