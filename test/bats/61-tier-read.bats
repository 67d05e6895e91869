#!/usr/bin/env bats
# 61-tier-read: hs-serve --tier serves reads below the Tier1 trim point from
# the segments hs-offload wrote (libpaxos/t2read.c): hs-cat is byte-identical
# before and after an offload (file:// and S3, with and without --gaps,
# whole range and positions inside segments, eNnM and @time), hs-tail
# --from head crosses Tier2 -> Tier1 -> live appends, encrypted segments
# need the key, and a tampered segment or an unreachable store ends the
# read with an error instead of wrong data.

load helpers

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	[ -x "$HS_BIN/hs-offload" ] || skip "no hs-offload built"
	hs_tmpdir
	mkdir -p "$HS_T/tier"
	tserve_start tf --tier "file://$HS_T/tier"
	S3_ADDR=
	if command -v node >/dev/null 2>&1 && [ -d "$TOP/test/s3/node_modules/s3rver" ]; then
		S3_ADDR=$("$TOP/test/s3/start" "$HS_T/s3") || S3_ADDR=
	fi
	export HS_T S3_ADDR
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	[ -z "${S3_ADDR:-}" ] || "$TOP/test/s3/start" --stop "$HS_T/s3"
	local d st=0
	for d in tf ts3 tk tc; do
		[ -e "$HS_T/$d.bgpid" ] || continue
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
