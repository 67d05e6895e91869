#!/usr/bin/env bats
# 23-admin: hs-admin against a real hs-serve - stream create/list/info/
# exists/delete/trim, cluster status, stats, exit statuses, and 100,000
# streams created in bulk and listed.

load helpers

# One hs-serve for the whole file (started in setup_file, stopped in
# teardown_file by the same process, so its exit status is known).
setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
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

admin() {
	timeout 30 "$HS_BIN/hs-admin" "$@"
}

json_lines() { # every stdin line parses as JSON; prints the count
	python3 -c 'import json,sys; print(len([json.loads(l) for l in sys.stdin]))'
}

@test "usage errors exit 64 with a message on stderr and nothing on stdout" {
	for args in "" "stream" "stream frob" "frob" "stream create" \
		"stream list --before tail" "stream create 'bad name'" \
		"stream create _reserved" "stream trim t23-x" \
		"stream trim t23-x --before nowhere" "stream create x --replication 0" \
		"stream create x --retention 5" "stream create x --durability maybe" \
		"stream list --names --json" "stream list extra" "cluster status extra"; do
		eval "run --separate-stderr admin $args"
		[ "$status" -eq 64 ] || { echo "'$args': status $status"; false; }
		[ -z "$output" ] || { echo "'$args' wrote to stdout: $output"; false; }
		[ -n "$stderr" ] || { echo "'$args': no message"; false; }
	done
	run --separate-stderr admin stream list --before tail
	[[ "$stderr" == *"--before is not an option of 'stream list'"* ]]
}

@test "server down: exit 69 and a one-line reason" {
	run --separate-stderr admin -a "unix:$HS_T/none.sock" stream list --names
	[ "$status" -eq 69 ]
	[ -z "$output" ]
	[[ "$stderr" == *"cannot reach hs-serve"* ]]
	run admin -a "unix:$HS_T/none.sock" stream exists t23-a
	[ "$status" -eq 69 ]
}

@test "create, exists, list --names, duplicate creation" {
	run --separate-stderr admin stream create t23-b t23-a t23-c --replication 1
	[ "$status" -eq 0 ]
	[ -z "$output" ] && [ -z "$stderr" ]
	run admin stream exists t23-a
	[ "$status" -eq 0 ] && [ -z "$output" ]
	run admin stream exists t23-a t23-b t23-c
	[ "$status" -eq 0 ]
	run admin stream exists t23-zz
	[ "$status" -eq 1 ] && [ -z "$output" ]
	run admin stream exists t23-a t23-zz
	[ "$status" -eq 1 ]

	run --separate-stderr admin stream list --names --prefix t23-
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 't23-a\nt23-b\nt23-c')" ]
	# Not a tty: the default is --names.
	run admin stream list --prefix t23-
	[ "$output" = "$(printf 't23-a\nt23-b\nt23-c')" ]

	run --separate-stderr admin stream create t23-a
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"stream 't23-a' already exists"* ]]
	# The other names of the batch are still created.
	run --separate-stderr admin stream create t23-d t23-a
	[ "$status" -eq 65 ]
	run admin stream exists t23-d
	[ "$status" -eq 0 ]
	run --separate-stderr admin stream create --exist-ok t23-a t23-e
	[ "$status" -eq 0 ] && [ -z "$stderr" ]
	run admin stream list --names --prefix t23-
	[ "$output" = "$(printf 't23-a\nt23-b\nt23-c\nt23-d\nt23-e')" ]
}

@test "info and list --json: one parseable object per stream with the attributes" {
	admin stream create t23j-one --replication 1 --retention 7d --durability async
	run --separate-stderr admin stream info --json t23j-one
	[ "$status" -eq 0 ]
	[ "$(json_lines <<<"$output")" = 1 ]
	python3 -c '
import json,sys
o = json.loads(sys.argv[1])
assert o["name"] == "t23j-one", o
assert o["replication"] == 1 and o["durability"] == "async", o
assert o["retention_ms"] == 7 * 86400 * 1000, o
assert o["offload_after_ms"] == 0 and o["head"] == o["tail"], o
assert o["records"] in (0, None) and o["created_ms"] > 1700000000000, o
' "$output"

	run --separate-stderr admin stream info t23j-one
	[ "$status" -eq 0 ]
	[[ "$output" == *"name          t23j-one"* ]]
	[[ "$output" == *"retention     7d"* ]]
	[[ "$output" == *"durability    async"* ]]

	admin stream create t23j-two
	run admin stream list --json --prefix t23j-
	[ "$status" -eq 0 ]
	[ "$(json_lines <<<"$output")" = 2 ]
	[ "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["name"] for l in sys.stdin))' <<<"$output")" = "t23j-one t23j-two" ]
}

@test "unknown stream: info, delete and trim exit 66 and name it" {
	run --separate-stderr admin stream info t23-nope
	[ "$status" -eq 66 ]
	[ -z "$output" ]
	[[ "$stderr" == *"no such stream 't23-nope'"* ]]
	run --separate-stderr admin stream delete -f t23-nope
	[ "$status" -eq 66 ]
	run --separate-stderr admin stream trim t23-nope --before tail
	[ "$status" -eq 66 ]
}

@test "delete needs -f without a terminal, then deletes" {
	admin stream create t23d-x t23d-y
	run --separate-stderr admin stream delete t23d-x </dev/null
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"-f"* ]]
	run admin stream exists t23d-x
	[ "$status" -eq 0 ]
	run --separate-stderr admin stream delete -f t23d-x
	[ "$status" -eq 0 ] && [ -z "$output" ] && [ -z "$stderr" ]
	run admin stream exists t23d-x
	[ "$status" -eq 1 ]
	run admin stream list --names --prefix t23d-
	[ "$output" = t23d-y ]
	run admin stream delete --force t23d-y
	[ "$status" -eq 0 ]
	run admin stream list --names --prefix t23d-
	[ "$status" -eq 0 ] && [ -z "$output" ]
}

@test "trim: moves the trim point forward, never back" {
	admin stream create t23t
	run --separate-stderr admin stream trim t23t --before tail
	[ "$status" -eq 0 ] && [ -z "$output" ]
	[ -x "$HS_BIN/hs-append" ] || skip "hs-append not built yet: records cannot be added"
	seq 10 | timeout 30 "$HS_BIN/hs-append" t23t
	run admin stream trim t23t --before tail-3
	[ "$status" -eq 0 ]
	run admin stream info --json t23t
	python3 -c '
import json,sys
o = json.loads(sys.argv[1])
assert o["trim"] is not None, o
assert o["records"] in (3, None), o
' "$output"
	trim1=$(admin stream info --json t23t | python3 -c 'import json,sys; print(json.load(sys.stdin)["trim"])')
	run admin stream trim t23t --before head
	[ "$status" -eq 0 ]
	trim2=$(admin stream info --json t23t | python3 -c 'import json,sys; print(json.load(sys.stdin)["trim"])')
	[ "$trim1" = "$trim2" ]
	if [ -x "$HS_BIN/hs-cat" ]; then
		run timeout 30 "$HS_BIN/hs-cat" t23t
		[ "$output" = "$(printf '8\n9\n10')" ]
	fi
}

@test "trim --before @time and tail-N" {
	[ -x "$HS_BIN/hs-append" ] && [ -x "$HS_BIN/hs-cat" ] || skip "no hs-append or hs-cat"
	seq 1 5 | timeout 30 "$HS_BIN/hs-append" -c t23tt
	sleep 0.05
	local t
	t=$(($(date +%s%N) / 1000000))
	sleep 0.05
	seq 6 10 | timeout 30 "$HS_BIN/hs-append" t23tt
	# Everything before the first record at or after the time.
	run --separate-stderr admin -v stream trim t23tt --before "@$t"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"trimmed through e1n5"* ]]
	run timeout 30 "$HS_BIN/hs-cat" t23tt
	[ "$output" = "$(seq 6 10)" ]
	# A time before the head trims nothing more.
	run admin stream trim t23tt --before @0
	[ "$status" -eq 0 ]
	run timeout 30 "$HS_BIN/hs-cat" t23tt
	[ "$output" = "$(seq 6 10)" ]
	run admin stream trim t23tt --before tail-2
	[ "$status" -eq 0 ]
	run timeout 30 "$HS_BIN/hs-cat" t23tt
	[ "$output" = "$(seq 9 10)" ]
	# A time after the newest record trims everything written, no more.
	run --separate-stderr admin -v stream trim t23tt --before @+1h
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"trimmed through e1n10"* ]]
	run timeout 30 "$HS_BIN/hs-cat" t23tt
	[ "$status" -eq 0 ] && [ -z "$output" ]
	echo 11 | timeout 30 "$HS_BIN/hs-append" t23tt
	run timeout 30 "$HS_BIN/hs-cat" t23tt
	[ "$output" = 11 ]
}

@test "cluster status: healthy, with the local peer up" {
	run --separate-stderr admin cluster status --wait-healthy
	[ "$status" -eq 0 ]
	[[ "$output" == *"healthy     yes"* ]]
	echo "$output" | grep -qE '^peer +[0-9]+ +up +yes +.+'
	run --separate-stderr admin cluster status --json
	[ "$status" -eq 0 ]
	python3 -c '
import json,sys
o = json.loads(sys.argv[1])
assert o["healthy"] is True, o
assert len(o["peers"]) >= 1 and all(p["state"] == "up" for p in o["peers"]), o
for p in o["peers"]:
    assert p["up"] is True and p["node_id"] >= 1 and p["pending_bytes"] >= 0, p
    assert "last_error" in p and "losses" in p and "connects" in p, p
assert isinstance(o["streams"], list) and o["streams_active"] >= len(o["streams"]), o
' "$output"
	# A stream in use here is listed with its epoch, R and nodeset.
	admin stream create t23cs
	admin stream info t23cs >/dev/null
	run --separate-stderr admin cluster status
	[ "$status" -eq 0 ]
	echo "$output" | grep -qE '^t23cs +active +[1-9][0-9]* +1 +[0-9]+ '
	echo "$output" | grep -qE '^streams +[1-9][0-9]* active on this server'
}

@test "stream info: the replication state (epoch, R, nodeset, LNG, lce) and both tiers" {
	admin stream create t23rs
	run --separate-stderr admin stream info t23rs
	[ "$status" -eq 0 ]
	echo "$output" | grep -qE '^epoch +[1-9][0-9]*$'
	echo "$output" | grep -qE '^epoch-r +1$'
	echo "$output" | grep -qE '^nodeset +[0-9]+$'
	echo "$output" | grep -qE '^lce +[0-9]+$'
	for k in lng last-released trim tier1-trim offload tier2 tier2-expired; do
		echo "$output" | grep -qE "^$k "
	done
	run --separate-stderr admin stream info --json t23rs
	[ "$status" -eq 0 ]
	python3 -c '
import json,sys
o = json.loads(sys.argv[1])
assert o["epoch"] >= 1 and o["epoch_replication"] == 1 and len(o["nodeset"]) == 1, o
assert o["lng"] == o["last_released"] and isinstance(o["lce"], int), o
assert o["tier2_segments"] == 0 and o["offload"] is None and o["tier2_expired"] is None, o
' "$output"
	[ -x "$HS_BIN/hs-append" ] || skip "hs-append not built yet"
	printf 'a\nb\nc\n' | timeout 30 "$HS_BIN/hs-append" t23rs
	run admin stream info --json t23rs
	python3 -c '
import json,sys
o = json.loads(sys.argv[1])
assert o["lng"] == "e%dn3" % o["epoch"] or o["lng"].startswith("e%dn" % o["epoch"]), o
assert o["records"] == 3, o
' "$output"
}

@test "stats: serve counters, and a stream after appends" {
	run --separate-stderr admin stats
	[ "$status" -eq 0 ]
	echo "$output" | grep -qE '^serve [a-z0-9_]+ '
	run admin stats --json
	[ "$status" -eq 0 ]
	json_lines <<<"$output" >/dev/null
	[ -x "$HS_BIN/hs-append" ] || skip "hs-append not built yet: no appends to show"
	printf 'a\nb\n' | timeout 30 "$HS_BIN/hs-append" -c t23s-x
	run admin stats --stream t23s-
	[ "$status" -eq 0 ]
	echo "$output" | grep -q '^stream/t23s-x '
	! echo "$output" | grep -qv '^stream/t23s-'
}

@test "100,000 streams created with --from-file and listed" {
	seq -f 'bulk%06.0f' 100000 >"$HS_T/names"
	pid=$(hs_daemon_pid serve)
	rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
	t0=$(date +%s%N)
	run --separate-stderr admin -t 30s stream create --from-file "$HS_T/names"
	t1=$(date +%s%N)
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	[ -z "$output" ]
	sleep 1
	rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
	echo "# 100000 streams created in $(( (t1 - t0) / 1000000 )) ms;" \
		"hs-serve RSS ${rss0} KiB -> ${rss1} KiB:" \
		"$(( (rss1 - rss0) * 1024 / 100000 )) bytes per idle stream" >&3

	t0=$(date +%s%N)
	admin stream list --names --prefix bulk >"$HS_T/listed"
	t1=$(date +%s%N)
	echo "# listed in $(( (t1 - t0) / 1000000 )) ms" >&3
	cmp "$HS_T/names" "$HS_T/listed"
	[ "$(admin stream list --names | grep -c '^bulk')" -eq 100000 ]

	# The reader going away ends hs-admin quietly with status 0.
	run bash -c "'$HS_BIN/hs-admin' stream list --names | head -1; exit \${PIPESTATUS[0]}"
	[ "$status" -eq 0 ]
	[ "$output" = bulk000001 ]

	# Creating them again: every one exists (65), or is fine with --exist-ok.
	run --separate-stderr admin stream create --from-file - <<<"bulk000001"
	[ "$status" -eq 65 ]
	run admin stream create --exist-ok --from-file "$HS_T/names"
	[ "$status" -eq 0 ]
}

@test "--from-file: a bad name is bad input (65) with its line, nothing created" {
	printf 't23f-a\nbad name\n' >"$HS_T/bad"
	run --separate-stderr admin stream create --from-file "$HS_T/bad"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *":2: invalid stream name 'bad name'"* ]]
	run admin stream exists t23f-a
	[ "$status" -eq 1 ]
	run admin stream create --from-file "$HS_T/missing"
	[ "$status" -eq 66 ]
}
