#!/usr/bin/env bats
# 21-append: hs-append against a real hs-serve - round trips through every
# input format (read back with hs-cat), empty and binary records, json
# timestamps, --print-lsn, the over-size record, exit statuses, SIGTERM
# while the input is still open, and the server going away mid-stream.

load helpers

# One hs-serve for the whole file (started in setup_file, stopped in
# teardown_file by the same process, so its exit status is known).
setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	[ -x "$HS_BIN/hs-cat" ] || skip "no hs-cat built"
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

app() {
	timeout 30 "$HS_BIN/hs-append" "$@"
}

cat_() {
	timeout 30 "$HS_BIN/hs-cat" "$@"
}

@test "usage errors exit 64 with a message and nothing on stdout" {
	for args in "" "-c" "'bad name'" "_reserved" "-0 --whole s" "-0 -d , s" \
		"--format xml s" "--format json -0 s" "--batch 0 s" "--batch x s" \
		"--linger forever s" "--max-inflight 0 s" "-d ab s"; do
		eval "run --separate-stderr app $args </dev/null"
		[ "$status" -eq 64 ] || { echo "'$args': status $status"; false; }
		[ -z "$output" ] || { echo "'$args' wrote to stdout: $output"; false; }
		[[ "$stderr" == *usage:* ]] || { echo "'$args': $stderr"; false; }
	done
}

@test "server down: exit 69 and a one-line reason" {
	run --separate-stderr app -a "unix:$HS_T/none.sock" -c t21-down <<<"x"
	[ "$status" -eq 69 ]
	[ -z "$output" ]
	[[ "$stderr" == *"cannot reach hs-serve"* ]]
}

@test "unknown stream without -c: exit 66, nothing created" {
	run --separate-stderr app t21-nosuch <<<"x"
	[ "$status" -eq 66 ]
	[[ "$stderr" == *"no such stream 't21-nosuch'"* ]]
	run cat_ t21-nosuch
	[ "$status" -eq 66 ]
}

@test "1,000,000 lines round trip byte-identical" {
	seq 1000000 >"$HS_T/seq"
	run --separate-stderr app -c t21-logs "$HS_T/seq"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	cat_ t21-logs >"$HS_T/seq.out"
	cmp "$HS_T/seq" "$HS_T/seq.out"
	# A second append goes after the first.
	seq 5 | app t21-logs
	[ "$(cat_ t21-logs | tail -n 6 | tr '\n' ' ')" = "1000000 1 2 3 4 5 " ]
}

@test "empty records are kept; a last line without newline is a record" {
	printf 'a\n\n\nb\n\nc' | app -c t21-empty
	run cat_ --format netstring t21-empty
	[ "$status" -eq 0 ]
	[ "$output" = "1:a,0:,0:,1:b,0:,1:c," ]
	# --whole: an empty file is one empty record.
	: >"$HS_T/empty"
	printf 'x\ny' >"$HS_T/xy"
	app -c --whole t21-whole "$HS_T/empty" "$HS_T/xy" - <<<"z"
	run cat_ --format netstring t21-whole
	[ "$output" = "0:,3:x
y,2:z
," ]
}

@test "binary records with NUL and invalid UTF-8 through -0, -d, netstring and json" {
	printf 'a\0\377\376x\0\0\300\n\0' >"$HS_T/bin0"
	app -c -0 t21-bin0 <"$HS_T/bin0"
	cat_ -0 t21-bin0 >"$HS_T/bin0.out"
	cmp "$HS_T/bin0" "$HS_T/bin0.out"

	printf 'a\0b|\377|' >"$HS_T/bind"
	app -c -d '|' t21-bind <"$HS_T/bind"
	cat_ -d '|' t21-bind | cmp - "$HS_T/bind"

	printf '3:\0\377x,0:,2:\n\n,' >"$HS_T/binns"
	app -c --format netstring t21-binns <"$HS_T/binns"
	cat_ --format netstring t21-binns | cmp - "$HS_T/binns"

	# json: hs-cat's output is accepted unchanged and copies the bytes.
	cat_ --format json t21-binns >"$HS_T/binns.json"
	grep -q data_b64 "$HS_T/binns.json"
	app -c --format json t21-binns-copy <"$HS_T/binns.json"
	cat_ --format netstring t21-binns-copy | cmp - "$HS_T/binns"
}

@test "json input keeps ts; hs-cat --format json | hs-append --format json is lossless" {
	printf '%s\n' '{"ts":1764151200000,"data":"h\u00e9 \"q\""}' '{"data":""}' \
		'{"lsn":"e1n1","stream":"x","ts":5,"data_b64":"AP8="}' '' >"$HS_T/in.json"
	app -c --format json t21-json <"$HS_T/in.json"
	cat_ --format json t21-json >"$HS_T/a.json"
	run sed -n 1p "$HS_T/a.json"
	[[ "$output" == *'"ts":1764151200000,"data":"hé \"q\""}' ]]
	run sed -n 3p "$HS_T/a.json"
	[[ "$output" == *'"ts":5,"data_b64":"AP8="}' ]]
	# Record 2 had no ts: the server stamped it.
	run sed -n 2p "$HS_T/a.json"
	[[ "$output" =~ \"ts\":[0-9]{13},\"data\":\"\"\}$ ]]
	app -c --format json t21-json2 <"$HS_T/a.json"
	cat_ --format '%t %p\n' t21-json >"$HS_T/a.txt"
	cat_ --format '%t %p\n' t21-json2 | cmp - "$HS_T/a.txt"
	# Malformed json: 65, the earlier lines are in.
	run --separate-stderr app -c --format json t21-json3 <<<'{"data":"ok"}
{"data":1}'
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"line 2"* ]]
	[ "$(cat_ t21-json3)" = ok ]
}

@test "over-size record: exit 65 naming it; every record before it is in" {
	{ printf 'a\nb\n'; head -c 1048577 /dev/zero | tr '\0' x; printf '\nc\n'; } \
		>"$HS_T/big"
	run --separate-stderr app -c t21-big "$HS_T/big"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"record 3 is larger than 1048576 bytes"* ]]
	[[ "$stderr" == *"2 records acknowledged"* ]]
	[ "$(cat_ t21-big | tr '\n' ' ')" = "a b " ]
	# Exactly 1 MiB is fine.
	head -c 1048576 /dev/zero | tr '\0' y | app -c --whole t21-big
	[ "$(cat_ --format '%s\n' t21-big | tail -n 1)" = 1048576 ]
}

@test "--print-lsn prints one strictly increasing LSN per record, in order" {
	run --separate-stderr app -c --print-lsn --batch 100 t21-lsn < <(seq 20000)
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 20000 ]
	echo "$output" | awk '
		!/^e[0-9]+n[0-9]+$/ { print "bad line " NR ": " $0; bad = 1; exit }
		{ split(substr($0, 2), p, "n"); v = p[1] * 4294967296 + p[2] }
		NR > 1 && v <= last { print "not increasing at " NR; bad = 1; exit }
		{ last = v }
		END { exit bad }'
	# The LSNs are the ones the records got.
	[ "$(cat_ --format '%l %p\n' t21-lsn | sed -n 777p)" = "${lines[776]} 777" ]
}

@test "SIGTERM with the input still open: records read are acked, report, exit 0" {
	mkfifo "$HS_T/fifo"
	"$HS_BIN/hs-append" -c t21-sig <"$HS_T/fifo" 2>"$HS_T/sig.err" 3>&- &
	pid=$!
	exec 4>"$HS_T/fifo"
	echo first >&4
	# An interactive line goes out within the linger, not at EOF.
	for i in $(seq 100); do
		[ "$(cat_ t21-sig 2>/dev/null)" = first ] && break
		sleep 0.05
	done
	[ "$(cat_ t21-sig)" = first ]
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	exec 4>&-
	[ "$st" -eq 0 ]
	grep -q "1 record acknowledged, last LSN e[0-9]*n[0-9]*; 0 unacknowledged" "$HS_T/sig.err"
}

@test "SIGTERM while hs-serve does not answer: waits --timeout, reports, exit 75" {
	rm -f "$HS_T/fifo2"
	mkfifo "$HS_T/fifo2"
	"$HS_BIN/hs-append" -t 1s -c t21-stuck <"$HS_T/fifo2" 2>"$HS_T/stuck.err" 3>&- &
	pid=$!
	exec 4>"$HS_T/fifo2"
	echo one >&4
	for i in $(seq 100); do
		[ "$(cat_ t21-stuck 2>/dev/null)" = one ] && break
		sleep 0.05
	done
	[ "$(cat_ t21-stuck)" = one ]
	spid=$(hs_daemon_pid serve)
	kill -STOP "$spid"
	echo two >&4
	sleep 0.3
	kill -TERM "$pid"
	st=0
	SECONDS=0
	wait "$pid" || st=$?
	waited=$SECONDS
	kill -CONT "$spid"
	exec 4>&-
	[ "$st" -eq 75 ]
	[ "$waited" -le 3 ]
	grep -q "1 record acknowledged, last LSN e[0-9]*n[0-9]*; 1 unacknowledged" "$HS_T/stuck.err"
}

@test "hs-serve killed mid-stream: exit 69 with the acknowledged count" {
	hs_daemon_start serve2 "$HS_BIN/hs-serve" --data "$HS_T/serve2.d" \
		--listen "unix:$HS_T/s2.sock"
	timeout 30 "$HS_BIN/hs-append" -a "unix:$HS_T/s2.sock" -c t21-kill \
		< <(yes 0123456789012345678901234567890123456789) \
		2>"$HS_T/kill.err" 3>&- &
	pid=$!
	sleep 1
	# hs-serve's own peers get SIGTERM when it dies (PR_SET_PDEATHSIG):
	# note their PIDs to make sure they are gone before the test ends.
	spid=$(hs_daemon_pid serve2)
	kids=$(cat /proc/"$spid"/task/*/children 2>/dev/null)
	hs_daemon_kill9 serve2
	st=0
	wait "$pid" || st=$?
	for k in $kids; do
		for i in $(seq 200); do hs_alive "$k" || break; sleep 0.05; done
		hs_alive "$k" && { echo "# peer $k still alive 10s after hs-serve died" >&3; kill -KILL "$k"; }
	done
	[ "$st" -eq 69 ]
	grep -q "lost the connection to hs-serve" "$HS_T/kill.err"
	grep -q "records acknowledged, last LSN" "$HS_T/kill.err"
}

@test "a missing FILE: exit 66; the files before it are in" {
	printf '1\n2\n' >"$HS_T/f1"
	run --separate-stderr app -c t21-files "$HS_T/f1" "$HS_T/nofile" "$HS_T/f1"
	[ "$status" -eq 66 ]
	[[ "$stderr" == *"cannot open '$HS_T/nofile'"* ]]
	[ "$(cat_ t21-files | tr '\n' ' ')" = "1 2 " ]
}
