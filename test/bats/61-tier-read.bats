#!/usr/bin/env bats
# 61-tier-read: hs-serve --tier serves reads below the Tier1 trim point from
# the segments hs-offload wrote (libpaxos/t2read.c): hs-cat is byte-identical
# before and after an offload (file:// and S3, with and without --gaps,
# whole range and positions inside segments, eNnM and @time), hs-tail
# --from head crosses Tier2 -> Tier1 -> live appends, head+N, tail-N and
# an @time end count and search over Tier2 as before the offload (across
# an epoch change inside a segment, recovered HOLEs, and the Tier2/Tier1
# boundary), a read that outlives a retention run and an hs-serve whose
# cached manifest went stale (another hs-serve expired the segments) go on
# with a TRIM gap, encrypted segments need the key, and a tampered
# segment, an object the manifest names that is missing, or an
# unreachable store ends the read with an error instead of wrong data.

load helpers

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	[ -x "$HS_BIN/hs-offload" ] || skip "no hs-offload built"
	hs_tmpdir
	mkdir -p "$HS_T/tier"
	tserve_start tf --tier "file://$HS_T/tier"
	hs_s3_start || return 1
	export HS_T
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	hs_s3_stop
	local d st=0
	for d in tf ts3 tk tc tq tr ma mb mp1 mp2 mp3 hh hp1 hp2 hp3; do
		[ -e "$HS_T/$d.bgpid" ] || continue
		kill -CONT "$(hs_daemon_pid "$d")" 2>/dev/null
		hs_daemon_stop "$d" || st=$?
	done
	hs_tmpdir_remove
	return $st
}

# tserve_start NAME FLAGS...: an hs-serve with its own data and socket.
tserve_start() {
	local n=$1
	shift
	hs_daemon_start "$n" "$HS_BIN/hs-serve" --data "$HS_T/$n.d" \
		--listen "unix:$HS_T/$n.sock" "$@"
}

on() { # on NAME CMD ARGS...: run an hs client against server NAME
	local n=$1
	shift
	HS_ADDR=unix:$HS_T/$n.sock timeout 60 "$@"
}

# append SERVER NAME TAG N [FIRST [WIDTH]]: records TAG-000001.. padded to
# WIDTH bytes (so a few thousand fill several 1 MiB blocks).
append() {
	local w=${6:-0}
	seq -f "$3-%06.0f" "${5:-1}" "$(( ${5:-1} + $4 - 1 ))" |
		awk -v w="$w" '{ s = $0; while (length(s) < w) s = s "."; print s }' |
		on "$1" "$HS_BIN/hs-append" -c "$2"
}

off() { # off SERVER ARGS...
	local n=$1
	shift
	on "$n" "$HS_BIN/hs-offload" "$@"
}

info() { # info SERVER STREAM FIELD
	on "$1" "$HS_BIN/hs-admin" stream info "$2" |
		awk -v k="$3" '$1 == k { $1 = ""; sub(/^ /, ""); print }'
}

# snap SERVER STREAM TAG RANGE...: hs-cat of each range, json and --gaps,
# into $HS_T/TAG.N files.
snap() {
	local n=$1 s=$2 tag=$3 i=0 r
	shift 3
	for r in "$@"; do
		on "$n" "$HS_BIN/hs-cat" --format json "$s" "$r" >"$HS_T/$tag.$i" || return 1
		on "$n" "$HS_BIN/hs-cat" --format json --gaps "$s" "$r" >"$HS_T/$tag.g$i" || return 1
		i=$((i + 1))
	done
	on "$n" "$HS_BIN/hs-cat" "$s" >"$HS_T/$tag.raw" || return 1
}

same() { # same TAG1 TAG2: every snap file identical
	local f
	for f in "$HS_T/$1".*; do
		cmp "$f" "$HS_T/$2.${f##*.}" || return 1
	done
}

@test "hs-serve --tier: usage errors" {
	run --separate-stderr "$HS_BIN/hs-serve" --tier-cache 1M --listen "unix:$HS_T/x.sock"
	[ "$status" -eq 64 ]
	run --separate-stderr "$HS_BIN/hs-serve" --tier "nope://x" --data "$HS_T/x.d" \
		--listen "unix:$HS_T/x.sock"
	[ "$status" -eq 64 ]
	run "$HS_BIN/hs-serve" --help
	[[ $output == *--tier-key-file* ]]
}

@test "file: hs-cat byte-identical before and after offload, whole range and positions" {
	# 3000 records of 1000 bytes: about 3 blocks per MiB-segment, and 3
	# segments from two offload runs.
	append tf fa fa 2000 1 1000
	append tf fa fa 1000 2001 1000
	ranges=(.. e1n1..e1n5 e1n1500.. e1n999..e1n1002 e1n1049..e1n1100 e1n2990..e1n3001
		e1n2000..e1n2001 head..e1n10)
	snap tf fa fab "${ranges[@]}"
	[ "$(wc -l <"$HS_T/fab.0")" -eq 3000 ]
	off tf --to "file://$HS_T/tier" --stream fa --older-than 0 --segment-size 1200k
	[ "$(info tf fa tier1-trim)" = e1n3000 ]
	[ "$(info tf fa tier2)" = "3 segments" ]
	snap tf fa faa "${ranges[@]}"
	same fab faa
	# Once more, now from the block cache.
	snap tf fa fac "${ranges[@]}"
	same fab fac
}

@test "file: offloaded, then more appended: reads cross the Tier2/Tier1 boundary" {
	append tf hb hb 1000
	snap tf hb hbb .. e1n990..e1n1000 e1n400..
	off tf --to "file://$HS_T/tier" --stream hb --older-than 0 --segment-size 8k
	append tf hb hb 500 1001
	snap tf hb hba .. e1n990..e1n1010 e1n400..
	[ "$(wc -l <"$HS_T/hba.0")" -eq 1500 ]
	head -1000 "$HS_T/hba.0" | cmp - "$HS_T/hbb.0"
	cmp "$HS_T/hba.1" <(sed -n '990,1009p' "$HS_T/hba.0")
	head -10 "$HS_T/hba.1" | cmp - "$HS_T/hbb.1"
	head -601 "$HS_T/hba.2" | cmp - "$HS_T/hbb.2"
	seq -f "hb-%06.0f" 1 1500 | cmp - <(on tf "$HS_BIN/hs-cat" hb)
}

@test "a 1 MiB block cache: concurrent readers of a multi-block range, evictions" {
	mkdir -p "$HS_T/tier-c"
	tserve_start tc --tier "file://$HS_T/tier-c" --tier-cache 1M
	append tc cc cc 4000 1 1000
	snap tc cc ccb .. e1n1234..e1n3456
	off tc --to "file://$HS_T/tier-c" --stream cc --older-than 0
	pids=()
	for i in 1 2 3; do
		on tc "$HS_BIN/hs-cat" --format json cc >"$HS_T/cc.par$i" &
		pids+=($!)
	done
	snap tc cc cca .. e1n1234..e1n3456
	wait "${pids[@]}"
	same ccb cca
	for i in 1 2 3; do
		cmp "$HS_T/cc.par$i" "$HS_T/ccb.0"
	done
	hs_daemon_stop tc
}

@test "hs-tail --from head crosses Tier2, Tier1 and live appends" {
	append tf lv lv 300
	off tf --to "file://$HS_T/tier" --stream lv --older-than 0 --segment-size 2k
	append tf lv lv 100 301
	HS_ADDR=unix:$HS_T/tf.sock timeout 60 "$HS_BIN/hs-tail" --from head -c 450 lv \
		>"$HS_T/lv.out" &
	pid=$!
	sleep 0.5
	append tf lv lv 50 401
	wait "$pid"
	seq -f "lv-%06.0f" 1 450 | cmp - "$HS_T/lv.out"
	# -F from head too (follow, by the memory window once caught up).
	run on tf "$HS_BIN/hs-tail" --from head -c 10 lv
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = lv-000001 ]
}

@test "@time positions: the first record at or after the time, in Tier2 or Tier1" {
	append tf tm tm 100
	sleep 0.2
	t1=$(($(date +%s%N) / 1000000))
	sleep 0.05
	append tf tm tm 100 101
	sleep 0.2
	t2=$(($(date +%s%N) / 1000000))
	sleep 0.05
	append tf tm tm 100 201
	snap tf tm tmb "@$t1.." "@$t2.." "@0.." "@$t1..e1n150"
	[[ $(head -1 "$HS_T/tmb.0") == '{"lsn":"e1n101",'* ]]
	[[ $(head -1 "$HS_T/tmb.1") == '{"lsn":"e1n201",'* ]]
	off tf --to "file://$HS_T/tier" --stream tm --older-than 0 --segment-size 1k
	[ "$(info tf tm tier1-trim)" = e1n300 ]
	append tf tm tm 10 301
	snap tf tm tma "@$t1.." "@$t2.." "@0.." "@$t1..e1n150"
	for i in 0 1 2 3; do
		head -n "$(wc -l <"$HS_T/tmb.$i")" "$HS_T/tma.$i" | cmp - "$HS_T/tmb.$i"
	done
	[ "$(wc -l <"$HS_T/tma.0")" -eq 210 ]
	[ "$(wc -l <"$HS_T/tma.1")" -eq 110 ]
}

@test "head+N and tail-N count Tier2 then Tier1 slots as before the offload" {
	mkdir -p "$HS_T/tier-q"
	tserve_start tq --tier "file://$HS_T/tier-q"
	append tq pq pq 500 1 1000
	# A new epoch: its BRIDGE gap ends up inside a Tier2 segment, which
	# is then counted from its blocks, not from its manifest entry.
	hs_daemon_stop tq
	tserve_start tq --tier "file://$HS_T/tier-q"
	append tq pq pq 500 501 1000
	[ "$(info tq pq epoch)" = 2 ]
	ranges=(head.. head+1.. head+409.. head+410.. head+499.. head+500.. head+501..
		head+819.. head+820.. head+821.. head+999.. head+1000.. head+5000..
		tail-1.. tail-180.. tail-181.. tail-499.. tail-500.. tail-501.. tail-1000..
		tail-1001.. tail-5000.. head+100..head+900 tail-900..tail-100
		head+450..tail-450 head+819..head+821 ..head+600 ..tail-600)
	snap tq pq pqb "${ranges[@]}"
	[ "$(wc -l <"$HS_T/pqb.3")" -eq 590 ]
	# Whole 200 KiB segments only (--min-size): 4 segments, the epoch
	# change inside the third, the last 180 records stay in Tier1.
	off tq --to "file://$HS_T/tier-q" --stream pq --older-than 0 --segment-size 200k \
		--min-size 200k
	[ "$(info tq pq tier2)" = "4 segments" ]
	[ "$(info tq pq tier1-trim)" = e2n320 ]
	snap tq pq pqa "${ranges[@]}"
	same pqb pqa
	# Again, with the counts cached.
	snap tq pq pqc "${ranges[@]}"
	same pqb pqc
	# Everything in Tier2: tail-N counts there alone.
	off tq --to "file://$HS_T/tier-q" --stream pq --older-than 0
	[ "$(info tq pq tier1-trim)" = e2n500 ]
	snap tq pq pqd "${ranges[@]}"
	same pqb pqd
	# And from a fresh hs-serve (nothing cached; a new epoch, so --gaps
	# output up to the tail ends with one more BRIDGE: records only).
	hs_daemon_stop tq
	tserve_start tq --tier "file://$HS_T/tier-q"
	snap tq pq pqe "${ranges[@]}"
	for i in "${!ranges[@]}"; do
		cmp "$HS_T/pqb.$i" "$HS_T/pqe.$i"
	done
	hs_daemon_stop tq
}

@test "head+N and tail-N count HOLEs in Tier2 as in Tier1, not BRIDGEs" {
	local i peers=()
	[ -x "$HS_TOOLS/hs-ptool" ] || skip "no hs-ptool built"
	mkdir -p "$HS_T/tier-h"
	for i in 1 2 3; do
		peer_start "hp$i" --node-id "$i"
		peers+=(--peer "unix:$HS_T/hp$i.sock")
	done
	tserve_start hh "${peers[@]}" --tier "file://$HS_T/tier-h"
	# As in 28-recovery: epoch 1 recovered with HOLEs e1n5..9 and e1n11.
	on hh "$HS_BIN/hs-admin" stream create ho --replication 1
	seq 1 4 | on hh "$HS_BIN/hs-append" ho
	log=$(info hh ho log)
	hs_daemon_kill9 hh
	timeout 10 "$HS_TOOLS/hs-ptool" -a "unix:$HS_T/hp1.sock" store --log "$log" --epoch 1 \
		--esn-start 10 --count 1 --run 1 --size 12 >/dev/null
	timeout 10 "$HS_TOOLS/hs-ptool" -a "unix:$HS_T/hp2.sock" store --log "$log" --epoch 1 \
		--esn-start 12 --count 2 --run 2 --size 12 >/dev/null
	tserve_start hh "${peers[@]}" --tier "file://$HS_T/tier-h"
	seq 5 30 | on hh "$HS_BIN/hs-append" ho
	run -0 on hh "$HS_BIN/hs-cat" --gaps --format json ho ..e2n1
	[[ $output == *'"gap":"HOLE","lo":"e1n5","hi":"e1n9"'* ]]
	ranges=()
	for i in 0 3 4 5 9 10 11 12 13 14 20 38 39 40; do
		ranges+=("head+$i.." "..head+$i")
	done
	for i in 1 2 25 26 27 30 31 32 35 39 40 41; do
		ranges+=("tail-$i.." "..tail-$i")
	done
	snap hh ho hob "${ranges[@]}"
	# head+4 is the first HOLE slot: the read starts there (the next
	# record is e1n10), as head+5..head+8 do.
	[ "$(head -1 "$HS_T/hob.g4")" = '{"gap":"HOLE","lo":"e1n5","hi":"e1n9"}' ]
	# 40-byte segments: epoch 1 with its HOLEs and BRIDGE in the first,
	# e2n1..e2n23 in the second, e2n24..e2n26 left in Tier1.
	off hh --to "file://$HS_T/tier-h" --stream ho --older-than 0 --segment-size 40 \
		--min-size 40
	[ "$(info hh ho tier1-trim)" = e2n23 ]
	snap hh ho hoa "${ranges[@]}"
	same hob hoa
	off hh --to "file://$HS_T/tier-h" --stream ho --older-than 0
	snap hh ho hoc "${ranges[@]}"
	same hob hoc
	for i in hh hp1 hp2 hp3; do
		hs_daemon_stop "$i"
	done
}

@test "--until @time: the first record at or after the time, in Tier2 or Tier1" {
	append tf tu tu 100
	sleep 0.2
	t1=$(($(date +%s%N) / 1000000))
	sleep 0.05
	append tf tu tu 100 101
	sleep 0.2
	t2=$(($(date +%s%N) / 1000000))
	sleep 0.05
	append tf tu tu 100 201
	ranges=("..@$t1" "..@$t2" "e1n50..@$t2" "@$t1..@$t2" "head+10..@$t2" "..@0")
	snap tf tu tub "${ranges[@]}"
	[ "$(wc -l <"$HS_T/tub.0")" -eq 100 ]
	[ "$(wc -l <"$HS_T/tub.1")" -eq 200 ]
	[ "$(wc -l <"$HS_T/tub.3")" -eq 100 ]
	# t1 in Tier2, t2 in Tier1.
	off tf --to "file://$HS_T/tier" --stream tu --older-than 0 --segment-size 1400 \
		--min-size 1400
	trim=$(info tf tu tier1-trim)
	[ "${trim#e1n}" -gt 100 ] && [ "${trim#e1n}" -lt 200 ]
	snap tf tu tum "${ranges[@]}"
	same tub tum
	# Both in Tier2, and more appended after.
	off tf --to "file://$HS_T/tier" --stream tu --older-than 0
	[ "$(info tf tu tier1-trim)" = e1n300 ]
	append tf tu tu 10 301
	snap tf tu tua "${ranges[@]}"
	for i in 0 1 2 3 4 5; do
		cmp "$HS_T/tua.$i" "$HS_T/tub.$i"
		cmp "$HS_T/tua.g$i" "$HS_T/tub.g$i"
	done
}

# check_read FILE TAG: every record line of an hs-cat --format json output
# holds TAG-<its LSN's sequence number>, in increasing LSN order.
check_read() {
	jq -r 'select(.lsn) | "\(.lsn) \(.data)"' "$1" |
		awk -v tag="$2" '{
			n = $1; sub(/^e1n/, "", n); d = substr($2, length(tag) + 2, 6) + 0
			if (substr($2, 1, length(tag) + 1) != tag "-" || d != n + 0 ||
			    n + 0 <= last) { print "bad record: " $0; bad = 1; exit 1 }
			last = n + 0
		} END { exit bad }'
}

@test "retention during a read: a TRIM gap for what expired, never wrong data" {
	mkdir -p "$HS_T/tier-r"
	# A 2 MiB block cache: the paused read below has few blocks ahead.
	tserve_start tr --tier "file://$HS_T/tier-r" --tier-cache 2M
	append tr rr rr 12000 1 1000
	off tr --to "file://$HS_T/tier-r" --stream rr --older-than 0
	[ "$(info tr rr tier1-trim)" = e1n12000 ]
	append tr rr rr 100 12001
	# A read that pauses early in the 12 MiB segment (its output pipe is
	# full) while retention expires the segment and deletes it.
	mkfifo "$HS_T/rr.fifo"
	on tr "$HS_BIN/hs-cat" --format json --gaps rr e1n1.. >"$HS_T/rr.fifo" \
		2>"$HS_T/rr.err" &
	pid=$!
	exec 5<"$HS_T/rr.fifo"
	read -r first <&5
	[[ $first == '{"lsn":"e1n1",'* ]]
	sleep 1
	off tr --to "file://$HS_T/tier-r" --stream rr --retention 1ms
	[ "$(info tr rr tier2-expired)" = e1n12000 ]
	[ -z "$(find "$HS_T/tier-r" -path '*/seg/*' -type f)" ]
	{ echo "$first"; cat <&5; } >"$HS_T/rr.out"
	exec 5<&-
	st=0
	wait "$pid" || st=$?
	[ "$st" -eq 0 ]
	# What came out is right; the rest of the segment is one TRIM gap up
	# to the trim point; Tier1 follows whole.
	check_read "$HS_T/rr.out" rr
	[ "$(grep -c '"gap":"TRIM"' "$HS_T/rr.out")" -eq 1 ]
	grep -q '"gap":"TRIM",.*"hi":"e1n12000"' "$HS_T/rr.out"
	[ "$(jq -r 'select(.lsn) | .data' "$HS_T/rr.out" | tail -n 100 | cut -c1-9 |
		tr '\n' ' ')" = "$(seq -f 'rr-%06.0f' 12001 12100 | tr '\n' ' ')" ]
	# Fewer than all: the read did hit the deleted segment.
	[ "$(jq -r 'select(.lsn) | .lsn' "$HS_T/rr.out" | wc -l)" -lt 12100 ]
	# Later reads: the TRIM gap from the start; head is Tier1's.
	run --separate-stderr on tr "$HS_BIN/hs-cat" --format json --gaps rr e1n1..
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == '{"gap":"TRIM","lo":"e1n1","hi":"e1n12000"}' ]]
	[ "${#lines[@]}" -eq 101 ]
	run --separate-stderr on tr "$HS_BIN/hs-cat" rr head+1..head+2
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(cut -c1-9 <<<"$output")" = rr-012002 ]
	hs_daemon_stop tr
}

@test "an object the manifest names that is missing: an error, never wrong data" {
	append tf tg tg 300 1 500
	off tf --to "file://$HS_T/tier" --stream tg --older-than 0 --segment-size 50k
	[ "$(info tf tg tier2)" = "3 segments" ]
	log=$(printf '%016x' "$(info tf tg log)")
	dir=$HS_T/tier/logs/$log/seg
	seg1=$(ls "$dir" | sort | sed -n 1p)
	seg2=$(ls "$dir" | sort | sed -n 2p)
	# A position that needs the first segment's index (its manifest entry
	# starts below its first record): the manifest is read again, still
	# names it: an error.
	mv "$dir/$seg1" "$HS_T/seg1.saved"
	run --separate-stderr on tf "$HS_BIN/hs-cat" tg head+150..
	[ "$status" -eq 65 ]
	[ -z "$output" ]
	grep -q "$seg1.*reading the manifest again" "$HS_T/tf.err"
	mv "$HS_T/seg1.saved" "$dir/$seg1"
	# A read that reaches the missing middle segment: whole, right records
	# up to it, then the error.
	mv "$dir/$seg2" "$HS_T/seg2.saved"
	run --separate-stderr on tf "$HS_BIN/hs-cat" tg
	[ "$status" -eq 65 ]
	[ -n "$stderr" ]
	[ "${#lines[@]}" -gt 0 ] && [ "${#lines[@]}" -lt 300 ]
	seq -f "tg-%06.0f" 1 "${#lines[@]}" | cmp - <(cut -c1-9 <<<"$output")
	grep -q "$seg2" "$HS_T/tf.err"
	mv "$HS_T/seg2.saved" "$dir/$seg2"
	seq -f "tg-%06.0f" 1 300 | cmp - <(on tf "$HS_BIN/hs-cat" tg | cut -c1-9)
}

@test "a manifest cached by an hs-serve that lost the stream: expired segments are a TRIM gap" {
	local i peers=()
	mkdir -p "$HS_T/tier-m"
	for i in 1 2 3; do
		peer_start "mp$i" --node-id "$i"
		peers+=(--peer "unix:$HS_T/mp$i.sock")
	done
	for i in ma mb; do
		tserve_start "$i" "${peers[@]}" --replication 2 --tier "file://$HS_T/tier-m"
	done
	append ma ms ms 300
	off ma --to "file://$HS_T/tier-m" --stream ms --older-than 0
	[ "$(info ma ms tier1-trim)" = e1n300 ]
	# B takes the stream over (A paused) and caches its manifest.
	kill -STOP "$(hs_daemon_pid ma)"
	append mb ms ms 10 301
	kill -CONT "$(hs_daemon_pid ma)"
	# (An @time end loads the manifest and, past every segment, nothing
	# else: no segment index or block of B's cache can hide the expiry.)
	run -0 on mb "$HS_BIN/hs-cat" ms tail-1..@+1h
	[ "$output" = ms-000310 ]
	# A takes it back (B paused) and expires every segment: B is not told.
	kill -STOP "$(hs_daemon_pid mb)"
	# A's first append meets B's seal and fences A (53-multi-serve).
	append ma ms ms 1 311 2>/dev/null || true
	append ma ms ms 10 311
	off ma --to "file://$HS_T/tier-m" --stream ms --retention 1ms
	[ "$(info ma ms tier2-expired)" = e1n300 ]
	[ -z "$(find "$HS_T/tier-m" -path '*/seg/*' -type f)" ]
	kill -CONT "$(hs_daemon_pid mb)"
	# B, woken, still sequences ms for itself: its stale manifest names
	# deleted segments; it reads the register again and reports them
	# expired.
	run --separate-stderr on mb "$HS_BIN/hs-cat" --format json --gaps ms e1n1..e1n301
	[ "$status" -eq 0 ]
	[ "$output" = '{"gap":"TRIM","lo":"e1n1","hi":"e1n300"}' ]
	grep -q "reading the manifest again" "$HS_T/mb.err"
	for i in ma mb mp1 mp2 mp3; do
		hs_daemon_stop "$i"
	done
}

@test "encrypted segments: read with --tier-key-file; without it, an error" {
	head -c 32 /dev/urandom >"$HS_T/tier.key"
	mkdir -p "$HS_T/tier-k"
	tserve_start tk --tier "file://$HS_T/tier-k" --tier-key-file "$HS_T/tier.key"
	append tk en en 500 1 300
	snap tk en enb .. e1n250..e1n260
	off tk --to "file://$HS_T/tier-k" --stream en --older-than 0 --key-file "$HS_T/tier.key"
	[ "$(info tk en tier1-trim)" = e1n500 ]
	snap tk en ena .. e1n250..e1n260
	same enb ena
	hs_daemon_stop tk
	tserve_start tk --tier "file://$HS_T/tier-k"
	run --separate-stderr on tk "$HS_BIN/hs-cat" en
	[ "$status" -eq 77 ]
	[ -n "$stderr" ]
	[[ $(cat "$HS_T/tk.err") == *"logs/"*"/seg/"* ]]
	hs_daemon_stop tk
}

@test "a tampered segment ends the read with an error naming the segment, never wrong data" {
	append tf tp tp 400 1 500
	off tf --to "file://$HS_T/tier" --stream tp --older-than 0
	log=$(printf '%016x' "$(info tf tp log)")
	seg=$(find "$HS_T/tier/logs/$log/seg" -type f)
	[ -n "$seg" ]
	key=${seg#"$HS_T/tier/"}
	printf 'X' | dd of="$seg" bs=1 seek=300 conv=notrunc status=none
	run --separate-stderr on tf "$HS_BIN/hs-cat" tp
	[ "$status" -eq 74 ]
	[[ $stderr == *checksum* ]]
	[ -n "$stderr" ]
	# Nothing from the damaged block came out.
	[ -z "$output" ]
	grep -q "$key" "$HS_T/tf.err"
}

@test "s3: byte-identical before and after offload; S3 stopped: an error exit" {
	[ -n "$S3_ADDR" ] || skip "no S3 rig (node and test/s3/node_modules)"
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
	tserve_start ts3 --tier s3://tier2/rd --tier-endpoint "http://$S3_ADDR" --tier-path-style
	append ts3 sa sa 2000 1 600
	append ts3 sb sb 100
	snap ts3 sa sab .. e1n700..e1n720
	off ts3 --to s3://tier2/rd --endpoint "http://$S3_ADDR" --path-style --stream 's[ab]' \
		--older-than 0 --segment-size 700k
	[ "$(info ts3 sa tier1-trim)" = e1n2000 ]
	[ "$(info ts3 sb tier1-trim)" = e1n100 ]
	snap ts3 sa saa .. e1n700..e1n720
	same sab saa
	"$TOP/test/s3/start" --stop "$HS_T/s3"
	S3_ADDR=
	run --separate-stderr on ts3 "$HS_BIN/hs-cat" sb
	[ "$status" -eq 69 ]
	[ -n "$stderr" ]
	[ -z "$output" ]
	grep -q "Tier2" "$HS_T/ts3.err"
	hs_daemon_stop ts3
}

@test "sub create --from @time/head+N and trim --before @time resolve over Tier2" {
	append tf us us 100
	sleep 0.2
	t1=$(($(date +%s%N) / 1000000))
	sleep 0.05
	append tf us us 100 101
	sleep 0.2
	t2=$(($(date +%s%N) / 1000000))
	sleep 0.05
	append tf us us 100 201
	off tf --to "file://$HS_T/tier" --stream us --older-than 0 --segment-size 1k
	[ "$(info tf us tier1-trim)" = e1n300 ]
	append tf us us 10 301
	# The manifest and indexes are not cached yet: the resolution waits.
	on tf "$HS_BIN/hs-admin" sub create us1 --stream us --from "@$t1"
	on tf "$HS_BIN/hs-admin" sub create us2 --stream us --from head+150
	on tf "$HS_BIN/hs-admin" sub create us3 --stream us --from tail-20
	run on tf "$HS_BIN/hs-admin" sub info us1 --json
	[[ "$output" == *'"checkpoint":"e1n101"'* ]]
	run on tf "$HS_BIN/hs-tail" --sub us1 -c 210
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq -f 'us-%06.0f' 101 310)" ]
	run on tf "$HS_BIN/hs-tail" --sub us2 -c 5
	[ "$output" = "$(seq -f 'us-%06.0f' 151 155)" ]
	run on tf "$HS_BIN/hs-tail" --sub us3 -c 20
	[ "$output" = "$(seq -f 'us-%06.0f' 291 310)" ]
	# A trim point in Tier2 is below the Tier1 trim: nothing to trim.
	run --separate-stderr on tf "$HS_BIN/hs-admin" -v stream trim us --before "@$t2"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"trimmed through e1n300"* ]]
	sleep 0.2
	t3=$(($(date +%s%N) / 1000000))
	sleep 0.05
	append tf us us 10 311
	run --separate-stderr on tf "$HS_BIN/hs-admin" -v stream trim us --before "@$t3"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"trimmed through e1n310"* ]]
	run --separate-stderr on tf "$HS_BIN/hs-cat" us e1n300..
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"gap TRIM e1n301..e1n310"* ]]
	[ "$output" = "$(seq -f 'us-%06.0f' 300 300; seq -f 'us-%06.0f' 311 320)" ]
}
