#!/usr/bin/env bats
# 31-status: what `hs-admin cluster status` and `hs-admin stream info` say
# about replication, on 3 external peers (node ids 1..3) under one hs-serve
# with R=2: peers with node ids, their health and a lost peer's error; per
# stream the epoch, R, nodeset, LNG (= last released) and last clean epoch,
# a new epoch after an hs-serve restart (with lce = the previous epoch), and
# JSON output with the documented keys (docs/man1/hs-admin.1.scd); and both
# tiers in stream info after hs-offload and Tier2 retention.

load helpers

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	hs_tmpdir
	HS_ADDR=unix:$HS_T/s.sock
	export HS_T HS_ADDR
	local i
	for i in 1 2 3; do
		peer_start p$i --node-id $i || return 1
	done
	serve3 || return 1
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	local st=0 d
	for d in serve p1 p2 p3; do
		hs_daemon_stop $d || st=1
	done
	hs_tmpdir_remove
	return $st
}

serve3() {
	serve_start --peer "unix:$HS_T/p1.sock" --peer "unix:$HS_T/p2.sock" \
		--peer "unix:$HS_T/p3.sock" --replication 2
}

admin() {
	timeout 30 "$HS_BIN/hs-admin" "$@"
}

app() {
	timeout 60 "$HS_BIN/hs-append" "$@"
}

# field STREAM KEY: one line of `stream info` ("key value").
field() {
	admin stream info "$1" | awk -v k="$2" '$1 == k { $1 = ""; sub(/^ +/, ""); print }'
}

# jfield STREAM KEY: one key of `stream info --json`, as Python prints it.
jfield() {
	admin stream info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# The epoch number of an LSN printed as eEnN.
epoch_of() {
	sed 's/^e\([0-9]*\)n.*/\1/'
}

@test "cluster status: 3 peers up with their node ids, healthy" {
	run -0 admin cluster status --wait-healthy
	[[ "$output" == *"healthy     yes"* ]]
	[[ "$output" == *"replication 2"* ]]
	for i in 1 2 3; do
		echo "$output" | grep -qE "^peer +$i +up +yes +unix:$HS_T/p$i.sock "
	done
	[ "$(echo "$output" | grep -cE '^peer ')" = 3 ]
}

@test "stream info: epoch, R=2, nodeset {1,2,3}, LNG advancing with appends" {
	seq 1 100 | app -c st1
	run -0 admin stream info st1
	[[ "$output" == *"replication   2"* ]]
	[[ "$output" == *"epoch-r       2"* ]]
	[[ "$output" == *"nodeset       1,2,3"* ]]
	e=$(field st1 epoch)
	[ "$e" -ge 1 ]
	lng1=$(field st1 lng)
	[ "$lng1" = "$(field st1 last-released)" ]
	[ "$(epoch_of <<<"$lng1")" = "$e" ]
	# LNG is the last record: tail - 1 in the same epoch.
	tail1=$(field st1 tail)
	[ "${lng1##*n}" = $(( ${tail1##*n} - 1 )) ]
	seq 1 50 | app st1
	lng2=$(field st1 lng)
	[ "${lng2##*n}" -eq $(( ${lng1##*n} + 50 )) ]
	# Both tiers are shown, Tier1 alone here.
	[ "$(field st1 trim)" = - ]
	[ "$(field st1 tier1-trim)" = - ]
	[ "$(field st1 offload)" = - ]
	[ "$(field st1 tier2)" = "0 segments" ]
}

@test "cluster status lists the active stream with its epoch, R, nodeset and LNG" {
	seq 1 10 | app -c st2
	run -0 admin cluster status
	line=$(echo "$output" | awk '$1 == "st2"')
	[ -n "$line" ]
	set -- $line
	# STREAM STATE EPOCH R NODESET LCE LNG TAIL
	[ "$2" = active ]
	[ "$3" = "$(field st2 epoch)" ]
	[ "$4" = 2 ]
	[ "$5" = 1,2,3 ]
	[ "$7" = "$(field st2 lng)" ]
	[[ "$output" == *"streams     "*" active on this server"* ]]
}

@test "JSON: cluster status and stream info parse, with the documented keys" {
	run -0 admin cluster status --json
	python3 -m json.tool <<<"$output" >/dev/null
	python3 -c '
import json,sys
o = json.loads(sys.argv[1])
for k in ("cluster_id", "healthy", "replication", "peers", "streams_active", "streams"):
    assert k in o, k
assert o["healthy"] is True and o["replication"] == 2, o
assert sorted(p["node_id"] for p in o["peers"]) == [1, 2, 3], o
for p in o["peers"]:
    for k in ("node_id", "state", "up", "data", "addr", "pending_bytes", "connects",
              "losses", "last_error", "last_error_ms"):
        assert k in p, (k, p)
    assert p["up"] is True and p["state"] == "up" and p["data"] is True, p
s = [x for x in o["streams"] if x["name"] == "st1"]
assert len(s) == 1, o
s = s[0]
for k in ("state", "epoch", "replication", "nodeset", "lng", "last_released", "lce",
          "tail", "trim"):
    assert k in s, (k, s)
assert s["state"] == "active" and s["replication"] == 2 and s["nodeset"] == [1, 2, 3], s
assert s["lng"] == s["last_released"] and s["epoch"] >= 1, s
assert o["streams_active"] >= 2, o
' "$output"
	run -0 admin stream info --json st1
	python3 -m json.tool <<<"$output" >/dev/null
	python3 -c '
import json,sys
o = json.loads(sys.argv[1])
for k in ("name", "log", "replication", "durability", "head", "tail", "trim", "tier1_trim",
          "offload", "tier2_segments", "tier2_expired", "epoch", "epoch_replication",
          "nodeset", "lng", "last_released", "lce", "records", "bytes", "created_ms"):
    assert k in o, k
assert o["epoch_replication"] == 2 and o["nodeset"] == [1, 2, 3], o
assert o["lng"] == o["last_released"] and o["lng"].startswith("e%dn" % o["epoch"]), o
assert o["trim"] is None and o["offload"] is None and o["tier2_segments"] == 0, o
' "$output"
}

@test "a killed peer shows down, with its error; appends go on with R=2" {
	hs_daemon_kill9 p3
	# hs-serve notices the lost link at once (EOF on its socket).
	for _ in $(seq 1 100); do
		admin cluster status | grep -qE '^peer +3 +down ' && break
		sleep 0.1
	done
	run admin cluster status
	echo "$output" | grep -qE '^peer +3 +down +yes .*(reset|refused|closed|No such file)'
	echo "$output" | grep -qE '^peer +1 +up '
	echo "$output" | grep -qE '^peer +2 +up '
	run -0 admin cluster status --json
	python3 -c '
import json,sys
o = json.loads(sys.argv[1])
p = {x["node_id"]: x for x in o["peers"]}
assert p[3]["state"] == "down" and p[3]["up"] is False, p
assert p[3]["last_error"] and p[3]["last_error_ms"] > 1700000000000, p
assert p[3]["losses"] >= 1, p
assert p[1]["up"] and p[2]["up"], p
' "$output"
	seq 1 10 | app st1
	peer_start p3 --node-id 3
	for _ in $(seq 1 100); do
		admin cluster status | grep -qE '^peer +3 +up ' && break
		sleep 0.1
	done
	admin cluster status | grep -qE '^peer +3 +up '
}

@test "stream info after offload and Tier2 retention: trim is below the first segment" {
	[ -x "$HS_BIN/hs-offload" ] || skip "no hs-offload built"
	mkdir -p "$HS_T/tier"
	url=file://$HS_T/tier
	seq 1 50 | app -c tt
	timeout 60 "$HS_BIN/hs-offload" --to "$url" --stream tt --older-than 0
	e=$(field tt epoch)
	[ "$(field tt offload)" = "e${e}n50" ]
	[ "$(field tt tier1-trim)" = "e${e}n50" ]
	[ "$(field tt tier2)" = "1 segments" ]
	# Everything is still somewhere: nothing is trimmed from the stream.
	[ "$(field tt trim)" = - ]
	[ "$(field tt head)" != "$(field tt tail)" ]
	[ "$(field tt records)" = 50 ]
	sleep 1.5
	seq 51 100 | app tt
	timeout 60 "$HS_BIN/hs-offload" --to "$url" --stream tt --older-than 0
	[ "$(field tt tier2)" = "2 segments" ]
	# Retention drops the old segment only: the stream's trim is Tier2's
	# expiry point, Tier1's is further on.
	timeout 60 "$HS_BIN/hs-offload" --to "$url" --stream tt --retention 1s
	[ "$(field tt tier2)" = "1 segments" ]
	[ "$(field tt tier2-expired)" = "e${e}n50" ]
	[ "$(field tt trim)" = "e${e}n50" ]
	[ "$(field tt tier1-trim)" = "e${e}n100" ]
	[ "$(field tt offload)" = "e${e}n100" ]
	[ "$(field tt head)" = "e${e}n51" ]
	[ "$(jfield tt trim)" = "e${e}n50" ]
	[ "$(jfield tt tier1_trim)" = "e${e}n100" ]
	[ "$(jfield tt tier2_segments)" = 1 ]
}

@test "after an hs-serve restart: a new epoch, lce = the previous epoch" {
	e1=$(field st1 epoch)
	lng1=$(field st1 lng)
	hs_daemon_stop serve
	serve3
	admin cluster status --wait-healthy >/dev/null
	run -0 admin stream info st1
	e2=$(field st1 epoch)
	[ "$e2" -gt "$e1" ]
	[ "$(field st1 lce)" = "$e1" ]
	[ "$(field st1 nodeset)" = 1,2,3 ]
	# Nothing appended in the new epoch yet: LNG is still the old one.
	[ "$(field st1 lng)" = "$lng1" ] || [ "$(epoch_of <<<"$(field st1 lng)")" = "$e2" ]
	seq 1 5 | app st1
	[ "$(epoch_of <<<"$(field st1 lng)")" = "$e2" ]
	[ "$(jfield st1 lce)" = "$e1" ]
	[ "$(jfield st1 epoch)" = "$e2" ]
}
