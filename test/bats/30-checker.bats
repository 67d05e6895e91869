#!/usr/bin/env bats
# 30-checker: the workload clients and the history checker of the fault
# tests (test/workload/).  First the checker is shown to fail: one
# deliberately broken history per anomaly class, each reported as exactly
# that class (and a clean history passes).  Then an end-to-end run against a
# real hs-serve: two appenders (test/tools/hs-wl) under a kill -9 and restart
# of hs-serve, two final readers (hs-cat), and the checker must pass.

load helpers

WL=$BATS_TEST_DIRNAME/../workload
CHECK=$WL/check

setup() {
	hs_tmpdir
}

teardown() {
	[ -n "${HS_T:-}" ] || return 0
	local pid
	if [ -f "$HS_T/appenders" ]; then
		# They are `timeout` processes: TERM reaches hs-wl through them,
		# and -k kills it should it not stop.
		local pids
		read -r -a pids <"$HS_T/appenders"
		for pid in "${pids[@]}"; do
			kill -TERM "$pid" 2>/dev/null || true
		done
		for pid in "${pids[@]}"; do
			wait "$pid" 2>/dev/null || true
		done
	fi
	hs_daemon_stop serve || true
	hs_tmpdir_remove
}

# wait_gone SECONDS PID...: wait until none of the PIDs is alive.
wait_gone() {
	local deadline=$((SECONDS + $1)) pid
	shift
	for pid in "$@"; do
		while hs_alive "$pid"; do
			[ "$SECONDS" -lt "$deadline" ] || return 1
			sleep 0.05
		done
	done
}

# A clean history: two writers, acked, failed, unknown (read and not read)
# and unsettled payloads, a HOLE, and an epoch change e1n6 -> e2n1.
write_clean() {
	cat >"$HS_T/w1" <<-'EOF'
	invoke w1-1
	ok e1n1 w1-1
	invoke w1-2
	ok e1n2 w1-2
	invoke w1-3
	info w1-3
	invoke w1-4
	fail w1-4
	invoke w1-5
	ok e2n1 w1-5
	EOF
	cat >"$HS_T/w2" <<-'EOF'
	invoke w2-1
	ok e1n3 w2-1
	invoke w2-2
	info w2-2
	invoke w2-3
	EOF
	cat >"$HS_T/r1" <<-'EOF'
	e1n1 DATA w1-1
	e1n2 DATA w1-2
	e1n3 DATA w2-1
	e1n4 DATA w2-2
	e1n5..e1n6 HOLE
	e2n1 DATA w1-5
	EOF
	cp "$HS_T/r1" "$HS_T/r2"
	# A partial reader: a later range only, the first epoch trimmed.
	printf '%s\n' "e1n1..e1n6 TRIM" "e2n1 DATA w1-5" >"$HS_T/t1"
}

# check_only CLASS [READER...]: run the checker on w1, w2 and the readers
# (default r1); CLASS "" means it must pass, else it must fail with CLASS
# and no other class.
check_only() {
	local cls=$1 args=() r
	shift
	[ $# -gt 0 ] || set -- r1
	for r in "$@"; do
		case $r in
		t*) args+=(-t "$HS_T/$r") ;;
		*) args+=(-r "$HS_T/$r") ;;
		esac
	done
	run timeout 30 "$CHECK" -w "$HS_T/w1" -w "$HS_T/w2" "${args[@]}"
	echo "$output"
	if [ -z "$cls" ]; then
		[ "$status" -eq 0 ]
	else
		[ "$status" -eq 1 ]
	fi
	python3 -c '
import json, sys
want, rep = sys.argv[1], json.loads(sys.argv[2])
got = sorted(c for c, v in rep["anomalies"].items() if v["count"])
assert rep["valid"] == (not want), rep["valid"]
assert got == ([want] if want else []), got
for c, v in rep["anomalies"].items():
    assert len(v["examples"]) == min(v["count"], 5), c
' "$cls" "$output"
}

@test "checker: a clean history passes (info read or not, fail not read, epoch jump)" {
	write_clean
	check_only "" r1 r2 t1
	[[ "$output" == *'"ok": 4'* ]]
	[[ "$output" == *'"info_read": 1'* ]]
}

@test "checker: lost - an acked record replaced by a hole" {
	write_clean
	sed -i 's/^e1n2 DATA w1-2$/e1n2..e1n2 HOLE/' "$HS_T/r1"
	check_only lost
	[[ "$output" == *'"payload": "w1-2"'* ]]
}

@test "checker: misplaced - two acked records read at each other's LSN" {
	write_clean
	sed -i 's/^e1n1 DATA w1-1$/e1n1 DATA w1-2/; 2s/^e1n2 DATA w1-2$/e1n2 DATA w1-1/' "$HS_T/r1"
	check_only misplaced
}

@test "checker: duplicate - one payload at two LSNs" {
	write_clean
	sed -i 's/^e1n5..e1n6 HOLE$/e1n5 DATA w2-2\ne1n6..e1n6 HOLE/' "$HS_T/r1"
	check_only duplicate
}

@test "checker: divergent - two readers, another record or another gap kind at one LSN" {
	write_clean
	sed -i 's/^e1n4 DATA w2-2$/e1n4 DATA w2-3/' "$HS_T/r2"
	check_only divergent r1 r2
	write_clean
	sed -i 's/^e1n5..e1n6 HOLE$/e1n5..e1n6 BRIDGE/' "$HS_T/r2"
	check_only divergent r1 r2
	write_clean
	sed -i 's/^e1n4 DATA w2-2$/e1n4..e1n4 HOLE/' "$HS_T/r2"
	check_only divergent r1 r2
}

@test "checker: unexpected - a payload nobody wrote" {
	write_clean
	sed -i 's/^e1n4 DATA w2-2$/e1n4 DATA w9-1/' "$HS_T/r1"
	check_only unexpected
}

@test "checker: aborted - a definitely failed append was read" {
	write_clean
	sed -i 's/^e1n4 DATA w2-2$/e1n4 DATA w1-4/' "$HS_T/r1"
	check_only aborted
}

@test "checker: nonmonotonic - LSNs going backwards in one reader" {
	write_clean
	sed -i '1{h;d};2{G}' "$HS_T/r1"
	head -2 "$HS_T/r1" | tr '\n' ' ' | grep -q '^e1n2 DATA w1-2 e1n1 DATA w1-1 $'
	check_only nonmonotonic
}

@test "checker: skip - a jump within an epoch, or into a later epoch past n1" {
	write_clean
	sed -i '/^e1n4 DATA w2-2$/d' "$HS_T/r1"
	check_only skip
	write_clean
	echo "e3n2 DATA w2-3" >>"$HS_T/r1"
	check_only skip
}

@test "checker: dataloss - a DATALOSS gap" {
	write_clean
	sed -i 's/^e1n5..e1n6 HOLE$/e1n5..e1n6 DATALOSS/' "$HS_T/r1"
	check_only dataloss
}

@test "checker: writer_order - one writer's acks out of invoke order" {
	write_clean
	sed -i 's/^ok e1n1 w1-1$/ok e1n2 w1-1/; s/^ok e1n2 w1-2$/ok e1n1 w1-2/' "$HS_T/w1"
	sed -i 's/^e1n1 DATA w1-1$/e1n1 DATA w1-2/; 2s/^e1n2 DATA w1-2$/e1n2 DATA w1-1/' "$HS_T/r1"
	check_only writer_order
}

@test "checker: a malformed history is a usage error (2), not a verdict" {
	write_clean
	echo "ok e1n9" >>"$HS_T/w1"
	run timeout 30 "$CHECK" -w "$HS_T/w1" -r "$HS_T/r1"
	[ "$status" -eq 2 ]
	[[ "$output" == *"w1:11"* ]]
	write_clean
	echo "e0n3 DATA w1-1" >>"$HS_T/r1"
	run timeout 30 "$CHECK" -w "$HS_T/w1" -r "$HS_T/r1"
	[ "$status" -eq 2 ]
}

@test "workload: 2 appenders, kill -9 of hs-serve mid-run, restart; final readers pass the checker" {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	[ -x "$HS_TOOLS/hs-wl" ] || skip "no hs-wl built"
	serve_start
	# Appenders run until SIGTERM (count is out of reach); `timeout` bounds
	# them should the test go wrong.
	timeout -k 5 25 "$WL/append-client" -t 1000 --stream wl --writer 1 --count 1000000 \
		--rate 300 >"$HS_T/w1" 2>"$HS_T/w1.err" 3>&- &
	a1=$!
	timeout -k 5 25 "$WL/append-client" -t 1000 --stream wl --writer 2 --count 1000000 \
		--rate 300 --batch 3 --inflight 8 >"$HS_T/w2" 2>"$HS_T/w2.err" 3>&- &
	a2=$!
	echo "$a1 $a2" >"$HS_T/appenders"
	sleep 1.5
	kids=$(pgrep -P "$(hs_daemon_pid serve)" || true)
	hs_daemon_kill9 serve
	# Its hs-peer child gets SIGTERM from the kernel and must let go of the
	# store before a new hs-serve can open it.  A child that lingers is
	# killed too (a crash of the whole node, which must not lose acked
	# data either) and noted.
	wait_gone 10 $kids || {
		echo "# hs-peer child(ren) $kids alive 10s after hs-serve died; killing" >&3
		kill -KILL $kids 2>/dev/null || true
		wait_gone 5 $kids
	}
	serve_start
	sleep 1.5
	kill -TERM "$a1" "$a2"
	s1=0 s2=0
	wait "$a1" || s1=$?
	wait "$a2" || s2=$?
	cat "$HS_T/w1.err" "$HS_T/w2.err"
	rm -f "$HS_T/appenders"
	[ "$s1" -eq 0 ] && [ "$s2" -eq 0 ]
	HS_WL_TIMEOUT=30 "$WL/read-client" wl >"$HS_T/r1"
	HS_WL_TIMEOUT=30 "$WL/read-client" wl >"$HS_T/r2"
	run timeout 60 "$CHECK" -w "$HS_T/w1" -w "$HS_T/w2" -r "$HS_T/r1" -r "$HS_T/r2"
	echo "$output"
	[ "$status" -eq 0 ]
	# The run really spanned the crash: acks in two epochs from each writer,
	# and a sizeable number of them.
	for w in w1 w2; do
		[ "$(sed -n 's/^ok e\([0-9]*\)n.*/\1/p' "$HS_T/$w" | sort -u | wc -l)" -ge 2 ]
		[ "$(grep -c '^ok ' "$HS_T/$w")" -ge 300 ]
	done
	# Every invoke got exactly one outcome line.
	for w in w1 w2; do
		[ "$(grep -c '^invoke ' "$HS_T/$w")" -eq "$(grep -vc '^invoke ' "$HS_T/$w")" ]
	done
	echo "# $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["stats"])' "$output")" >&3
	# And the same real history with one acknowledged record dropped from
	# one reader is caught.
	p=$(grep '^ok ' "$HS_T/w1" | sed -n '50s/^ok [^ ]* //p')
	[ -n "$p" ]
	grep -v " DATA $p\$" "$HS_T/r2" >"$HS_T/r2.bad"
	[ "$(wc -l <"$HS_T/r2.bad")" -eq "$(($(wc -l <"$HS_T/r2") - 1))" ]
	run timeout 60 "$CHECK" -w "$HS_T/w1" -w "$HS_T/w2" -r "$HS_T/r1" -r "$HS_T/r2.bad"
	[ "$status" -eq 1 ]
	python3 -c '
import json, sys
a = json.loads(sys.argv[1])["anomalies"]
assert sorted(c for c, v in a.items() if v["count"]) == ["lost", "skip"], a
assert a["lost"]["examples"][0]["payload"] == sys.argv[2], a["lost"]
' "$output" "$p"
	hs_daemon_stop serve
}
