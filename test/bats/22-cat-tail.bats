#!/usr/bin/env bats
# 22-cat-tail: hs-cat and hs-tail against a real hs-serve - the 1,000,000
# record round trip, ranges, -c/-n, every output format (binary payloads,
# empty records, the JSON round trip), SIGPIPE, exit statuses, and following:
# append-to-output latency, --until, -c, SIGTERM, several streams, -F.

load helpers

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	hs_tmpdir
	serve_start
	export HS_T HS_ADDR
	# The big stream, shared by the tests that only read it.
	seq 1000000 | timeout 60 "$HS_BIN/hs-append" -c logs
	seq 100 | timeout 20 "$HS_BIN/hs-append" -c r100
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	hs_daemon_stop serve
	local st=$?
	hs_tmpdir_remove
	return $st
}

cat_() { timeout 30 "$HS_BIN/hs-cat" "$@"; }
append() { timeout 30 "$HS_BIN/hs-append" "$@"; }
ms() { echo $(($(date +%s%N) / 1000000)); }

# Start CMD ARG... in the background under timeout (which passes SIGTERM on
# and exits with the command's status), output in $HS_T/$NAME.out; sets TP.
tail_bg() {
	local name=$1
	shift
	timeout 20 "$@" >"$HS_T/$name.out" 2>"$HS_T/$name.err" 3>&- &
	TP=$!
}

# Wait up to $2 ms until file $1 has at least $3 lines.
wait_lines() {
	local deadline=$(($(ms) + $2))
	while [ "$(wc -l <"$1")" -lt "$3" ]; do
		[ "$(ms)" -ge "$deadline" ] && return 1
		sleep 0.002
	done
}

@test "1,000,000 records round trip byte-identical (seq | hs-append; hs-cat)" {
	local t0 t1
	run bash -c "timeout 60 '$HS_BIN/hs-cat' logs | wc -l"
	[ "$status" -eq 0 ]
	[ "$output" -eq 1000000 ]
	t0=$(ms)
	timeout 60 "$HS_BIN/hs-cat" logs >"$HS_T/logs.out"
	t1=$(ms)
	cmp "$HS_T/logs.out" <(seq 1000000)
	echo "# hs-cat logs > file: 1000000 records in $((t1 - t0)) ms" \
		"($((1000000000 / (t1 - t0 + 1))) records/s)" >&3
}

@test "ranges: head+N, tail-N, ..TO, LSNs in both forms, times" {
	run cat_ r100 head+10..head+20
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 11 20)" ]
	run cat_ r100 tail-5..
	[ "$output" = "$(seq 96 100)" ]
	run cat_ r100 ..head+3
	[ "$output" = "$(seq 1 3)" ]
	run cat_ r100 head+98
	[ "$output" = "$(seq 99 100)" ]
	# LSNs: records of one hs-append are consecutive in one epoch.
	l5=$(cat_ --format '%l' r100 head+4..head+5)
	l8=$(cat_ --format '%l' r100 head+7..head+8)
	[[ "$l5" =~ ^e[0-9]+n[0-9]+$ ]]
	run cat_ r100 "$l5..$l8"
	[ "$output" = "$(seq 5 7)" ]
	n5=$(cat_ --format '%L' r100 head+4..head+5)
	run cat_ r100 "$((n5 + 1))..$((n5 + 3))"
	[ "$output" = "$(seq 6 7)" ]
	run cat_ --format '%l %p\n' r100 "$l5..$l8"
	[ "${lines[0]}" = "$l5 5" ]
	# Times: everything was appended within the last hour, nothing later.
	run cat_ r100 @-1h..
	[ "$output" = "$(seq 100)" ]
	run cat_ r100 @+1h..
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run cat_ r100 "@$(($(date +%s) * 1000 - 3600000))..head+2"
	[ "$output" = "$(seq 2)" ]
}

@test "-c and -n" {
	run cat_ -c 3 r100
	[ "$output" = "$(seq 3)" ]
	run cat_ -n 3 r100
	[ "$output" = "$(seq 98 100)" ]
	run cat_ -n 5 -c 2 r100
	[ "$output" = "$(seq 96 97)" ]
	run cat_ -c 2 r100 head+50..
	[ "$output" = "$(seq 51 52)" ]
	run --separate-stderr cat_ -c 0 r100
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run cat_ -n 1000 r100
	[ "$output" = "$(seq 100)" ]
}

@test "a range ending past the tail ends at the tail, and the next read too" {
	# Regression: the read's end was not clamped to the pinned tail, so its
	# peer stream waited at the release point for records that never came
	# and no READ_END arrived (hs-cat: "no answer ... within 5000ms").
	# Both reads must end well within the client's 5 s answer timeout.
	seq 1000 | append -c pt
	last=$(cat_ --format '%l' pt tail-1..)
	[[ "$last" =~ ^e([0-9]+)n1000$ ]]
	e=${BASH_REMATCH[1]}
	run --separate-stderr timeout 4 "$HS_BIN/hs-cat" pt "e${e}n990..e${e}n1010"
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 990 1000)" ]
	[ -z "$stderr" ]
	run --separate-stderr timeout 4 "$HS_BIN/hs-cat" pt "e${e}n400.."
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 400 1000)" ]
	# An end in a later epoch, and one past the tail with nothing before it.
	run --separate-stderr timeout 4 "$HS_BIN/hs-cat" pt "e${e}n998..e$((e + 3))n1"
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 998 1000)" ]
	run --separate-stderr timeout 4 "$HS_BIN/hs-cat" pt "e${e}n1001..e${e}n2000"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run --separate-stderr timeout 4 "$HS_BIN/hs-cat" -c 2 pt "e${e}n999..e${e}n2000"
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 999 1000)" ]
}

@test "formats: -0, -d, netstring, templates; empty records kept" {
	printf 'a\n\nccc\n' | append -c fm
	run bash -c "timeout 10 '$HS_BIN/hs-cat' -0 fm | od -An -c | tr -s ' '"
	[ "$output" = " a \\0 \\0 c c c \\0" ]
	run cat_ -d , fm
	[ "$output" = "a,,ccc," ]
	run cat_ --format netstring fm
	[ "$output" = "1:a,0:,3:ccc," ]
	run cat_ fm
	[ "$output" = "$(printf 'a\n\nccc')" ]
	run cat_ --format '%s:%p|%S\n' fm
	[ "${lines[0]}" = "1:a|fm" ]
	[ "${lines[1]}" = "0:|fm" ]
	[ "${lines[2]}" = "3:ccc|fm" ]
	run cat_ --format '%l %p\n' fm
	[[ "${lines[2]}" =~ ^e[0-9]+n[0-9]+\ ccc$ ]]
	run cat_ --format '%T' -c 1 fm
	[[ "$output" =~ ^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}\.[0-9]{3}Z$ ]]
}

@test "json round trip is lossless: NUL, invalid UTF-8, empty records, timestamps" {
	printf '3:a\0b,0:,2:\377\376,6:h\303\251llo,1:\n,' | append -c --format netstring jsa
	cat_ --format json jsa >"$HS_T/jsa.json"
	run python3 -c 'import json,sys
for l in open(sys.argv[1]): json.loads(l)
print("ok")' "$HS_T/jsa.json"
	[ "$output" = ok ]
	grep -q '"data_b64"' "$HS_T/jsa.json"
	grep -q '"data":"h\\u00e9llo"\|"data":"héllo"' "$HS_T/jsa.json"
	append -c --format json jsb <"$HS_T/jsa.json"
	cmp <(cat_ --format netstring jsa) <(cat_ --format netstring jsb)
	cmp <(cat_ --format netstring jsb) <(printf '3:a\0b,0:,2:\377\376,6:h\303\251llo,1:\n,')
	# Timestamps travel too.
	cmp <(cat_ --format '%t\n' jsa) <(cat_ --format '%t\n' jsb)
	cmp <(cat_ jsa) <(cat_ jsb)
}

@test "hs-cat big | head -1 ends quietly with status 0" {
	run bash -c "timeout 30 '$HS_BIN/hs-cat' logs 2>'$HS_T/pipe.err' | head -1; \
		echo \"status=\${PIPESTATUS[0]}\""
	[ "${lines[0]}" = 1 ]
	[ "${lines[1]}" = "status=0" ]
	[ ! -s "$HS_T/pipe.err" ]
}

@test "exit statuses: unknown stream 66, server down 69, usage and positions 64" {
	run --separate-stderr cat_ nosuch
	[ "$status" -eq 66 ]
	[ -z "$output" ]
	[[ "$stderr" == *"no such stream 'nosuch'"* ]]
	run --separate-stderr timeout 10 "$HS_BIN/hs-tail" nosuch
	[ "$status" -eq 66 ]
	[[ "$stderr" == *"no such stream 'nosuch'"* ]]
	run --separate-stderr cat_ -a "unix:$HS_T/none.sock" logs
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"cannot reach hs-serve"* ]]
	run --separate-stderr timeout 10 "$HS_BIN/hs-tail" -a "unix:$HS_T/none.sock" logs
	[ "$status" -eq 69 ]
	for args in "" "logs head.. extra" "'bad name'" "logs nowhere" "logs e0n5.." \
		"logs head+9..head+5" "-n 3 logs head.." "-c x logs" "-0 --format json logs" \
		"--format bogus logs" "--format '%q' logs" "-d ab logs" "-0 -d , logs"; do
		eval "run --separate-stderr cat_ $args"
		[ "$status" -eq 64 ] || { echo "hs-cat $args: status $status"; false; }
		[ -z "$output" ]
		[[ "$stderr" == hs-cat:* ]] || { echo "hs-cat $args: $stderr"; false; }
	done
	run --separate-stderr cat_ logs nowhere
	[[ "$stderr" == *"invalid range 'nowhere'"* ]]
	for args in "" "--from nowhere logs" "--until e1n0 logs" "-n 2 --from head logs" \
		"-c -1 logs" "'bad name'"; do
		eval "run --separate-stderr timeout 10 '$HS_BIN/hs-tail' $args"
		[ "$status" -eq 64 ] || { echo "hs-tail $args: status $status"; false; }
		[[ "$stderr" == hs-tail:* ]]
	done
	run --separate-stderr timeout 10 "$HS_BIN/hs-tail" --from nowhere logs
	[[ "$stderr" == *"invalid --from position 'nowhere'"* ]]
}

@test "hs-tail prints a new record within 100ms of its append (asserts < 1s)" {
	seq 5 | append -c lat
	tail_bg lat "$HS_BIN/hs-tail" lat
	sleep 0.5 # let the READ start: it begins at the tail
	local t0 t1
	t0=$(ms)
	echo new | append lat
	wait_lines "$HS_T/lat.out" 1000 1 || { cat "$HS_T/lat.err"; false; }
	t1=$(ms)
	echo "# append-to-hs-tail latency: $((t1 - t0)) ms (hs-append included)" >&3
	kill -TERM "$TP"
	wait "$TP"
	[ "$(cat "$HS_T/lat.out")" = new ]
	[ ! -s "$HS_T/lat.err" ]
}

@test "hs-tail stops at --until, after -c, and on SIGTERM, with status 0" {
	seq 10 | append -c stp
	run timeout 10 "$HS_BIN/hs-tail" --from head --until head+3 stp
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 3)" ]
	run timeout 10 "$HS_BIN/hs-tail" -n 4 -c 2 stp
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 7 8)" ]
	# -c waits for records that do not exist yet.
	tail_bg stp "$HS_BIN/hs-tail" -c 2 stp
	sleep 0.3
	printf 'x\ny\nz\n' | append stp
	local st=0
	wait "$TP" || st=$?
	[ "$st" -eq 0 ]
	[ "$(cat "$HS_T/stp.out")" = "$(printf 'x\ny')" ]
	# SIGTERM while idle.
	tail_bg stp2 "$HS_BIN/hs-tail" -n 1 stp
	wait_lines "$HS_T/stp2.out" 5000 1
	kill -TERM "$TP"
	st=0
	wait "$TP" || st=$?
	[ "$st" -eq 0 ]
	[ "$(cat "$HS_T/stp2.out")" = z ]
}

@test "hs-tail follows several streams at once; json carries the stream" {
	printf 'a1\na2\n' | append -c ma
	printf 'b1\n' | append -c mb
	tail_bg multi "$HS_BIN/hs-tail" --format json --from head -c 5 ma mb
	wait_lines "$HS_T/multi.out" 5000 3
	echo b2 | append mb
	echo a3 | append ma
	local st=0
	wait "$TP" || st=$?
	[ "$st" -eq 0 ]
	run python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l); print(o["stream"], o["data"])' "$HS_T/multi.out"
	[ "$(printf '%s\n' "${lines[@]}" | sort)" = "$(printf 'ma a1\nma a2\nma a3\nmb b1\nmb b2')" ]
	# Each stream's records in order.
	[ "$(printf '%s\n' "${lines[@]}" | grep '^ma')" = "$(printf 'ma a1\nma a2\nma a3')" ]
	run timeout 10 "$HS_BIN/hs-tail" --format '%S:%p\n' --from head --until head+1 ma mb
	[ "$(printf '%s\n' "${lines[@]}" | sort)" = "$(printf 'ma:a1\nmb:b1')" ]
}

@test "hs-tail -F waits for a stream that does not exist yet" {
	tail_bg later "$HS_BIN/hs-tail" -F --from head -c 2 later
	sleep 0.5
	hs_alive "$TP"
	printf 'one\ntwo\n' | append -c later
	local st=0
	wait "$TP" || st=$?
	[ "$st" -eq 0 ]
	[ "$(cat "$HS_T/later.out")" = "$(printf 'one\ntwo')" ]
}
