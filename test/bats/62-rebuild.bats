#!/usr/bin/env bats
# 62-rebuild: hs-offload --rebuild brings a cluster back from its Tier2
# bucket alone (docs/tier2.md "Rebuilding from the bucket"): offload
# streams (one with a folded manifest object), destroy hs-serve and its
# peers with their data, start an empty cluster, rebuild, and hs-cat is
# byte-identical, stream info shows the Tier2 range, new appends get LSNs
# above the restored ones and hs-cat reads across, a second rebuild and an
# ordinary offload run go on from there; --dry-run changes nothing; a
# stream of the same name with another log id is refused (65) while the
# others are rebuilt; the name object survives the sweep; orphans of
# crashed uploads (shorter or longer than the published segments), a
# rebuild killed between the create and the manifest, more than 64
# segments outside manifest objects (folded by the rebuild); file:// and
# S3 (s3rver, when the rig is installed).

load helpers

setup_file() {
	[ -x "$HS_BIN/hs-serve" ] || skip "no hs-serve built"
	[ -x "$HS_BIN/hs-offload" ] || skip "no hs-offload built"
	hs_tmpdir
	mkdir -p "$HS_T/tier"
	URL=file://$HS_T/tier
	hs_s3_start || return 1
	export HS_T URL
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	local st=0
	hs_s3_stop
	[ -e "$HS_T/rs.bgpid" ] && { hs_daemon_stop rs || st=$?; }
	hs_tmpdir_remove
	return $st
}

# A fresh cluster: hs-serve "rs" with its own peers and an empty data dir
# (FLAGS: the Tier2 ones; default --tier $URL).
fresh() {
	if [ -e "$HS_T/rs.bgpid" ]; then
		hs_daemon_stop rs || return 1
	fi
	rm -rf "$HS_T/rs.d"
	[ $# -gt 0 ] || set -- --tier "$URL"
	hs_daemon_start rs "$HS_BIN/hs-serve" --data "$HS_T/rs.d" \
		--listen "unix:$HS_T/rs.sock" "$@" || return 1
	HS_ADDR=unix:$HS_T/rs.sock
	export HS_ADDR
}

admin() {
	timeout 30 "$HS_BIN/hs-admin" "$@"
}

off() {
	timeout 120 "$HS_BIN/hs-offload" --to "$URL" "$@"
}

cat_() {
	timeout 60 "$HS_BIN/hs-cat" "$@"
}

# append NAME TAG N [FIRST]: records TAG-000001.. (create the stream).
append() {
	seq -f "$2-%06.0f" "${4:-1}" "$(( ${4:-1} + $3 - 1 ))" |
		timeout 30 "$HS_BIN/hs-append" -c "$1"
}

append_new() {
	printf 'new-1\nnew-2\n' | timeout 30 "$HS_BIN/hs-append" --print-lsn rb
}

info() {
	admin stream info "$1" | awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print }'
}

@test "offload, destroy the cluster, rebuild from the bucket: same records, new appends above" {
	fresh
	append rb rb 4000
	append rc rc 10
	cat_ rb >"$HS_T/rb.before"
	cat_ rc >"$HS_T/rc.before"
	run --separate-stderr off --older-than 0 --segment-size 512
	[ "$status" -eq 0 ]
	[ "$(info rb offload)" = e1n4000 ]
	[ "$(info rc offload)" = e1n10 ]
	# One folded manifest object, a name object per log.
	[ "$(find "$HS_T/tier" -path '*/man/*' -type f | wc -l)" -eq 1 ]
	[ "$(find "$HS_T/tier" -name name -type f | wc -l)" -eq 2 ]
	# The sweep keeps the name objects.
	run off --sweep --grace 0
	[ "$status" -eq 0 ]
	[ "$(find "$HS_T/tier" -name name -type f | wc -l)" -eq 2 ]
	nseg=$(info rb tier2)
	rblog=$(info rb log)
	cat_ rb | cmp - "$HS_T/rb.before"

	# The disaster: hs-serve, its peers and all their data are gone.
	fresh
	run admin stream exists rb
	[ "$status" -eq 1 ]

	# --dry-run prints the plan and changes nothing.
	run --separate-stderr off --rebuild --dry-run
	[ "$status" -eq 0 ]
	[[ $output == *"rebuild rb log "*" 1..e1n4000 objects 1 segments "*" create"* ]]
	[[ $output == *"rebuild rc log "*" create"* ]]
	run admin stream exists rb
	[ "$status" -eq 1 ]
	[ "$(find "$HS_T/tier" -path '*/man/*' -type f | wc -l)" -eq 1 ]

	run --separate-stderr off --rebuild -v
	echo "$stderr"
	[ "$status" -eq 0 ]
	[[ $stderr == *"2 streams rebuilt"* ]]
	[ "$(info rb log)" = "$rblog" ]
	[ "$(info rb offload)" = e1n4000 ]
	[ "$(info rb tier2)" = "$nseg" ]
	cat_ rb | cmp - "$HS_T/rb.before"
	cat_ rc | cmp - "$HS_T/rc.before"

	# New appends go after the restored LSNs, and hs-cat reads across.
	run --separate-stderr append_new
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == e2n1* ]] || [[ ${lines[0]} == e[3-9]n* ]]
	cat_ rb >"$HS_T/rb.after"
	[ "$(wc -l <"$HS_T/rb.after")" -eq 4002 ]
	head -n 4000 "$HS_T/rb.after" | cmp - "$HS_T/rb.before"
	[ "$(tail -n 2 "$HS_T/rb.after" | tr '\n' ' ')" = "new-1 new-2 " ]

	# Again: nothing to do.  An ordinary offload run goes on from there.
	run --separate-stderr off --rebuild
	[ "$status" -eq 0 ]
	run --separate-stderr off --older-than 0 --stream rb
	[ "$status" -eq 0 ]
	[[ "$(info rb offload)" != e1n4000 ]]
	cat_ rb | cmp - "$HS_T/rb.after"
}

@test "a stream of the same name with another log id is refused; the others are rebuilt" {
	fresh
	append rb other 3
	run --separate-stderr off --rebuild --dry-run
	[ "$status" -eq 65 ]
	[[ $output == *"rebuild rb log "*" refused"* ]]
	run --separate-stderr off --rebuild
	[ "$status" -eq 65 ]
	[[ $stderr == *"rb: the stream exists with log"*"not rebuilt"* ]]
	[ "$(cat_ rb | tr '\n' ' ')" = "other-000001 other-000002 other-000003 " ]
	cat_ rc | cmp - "$HS_T/rc.before"
}

@test "--stream picks the streams to rebuild" {
	fresh
	run --separate-stderr off --rebuild --stream rc
	[ "$status" -eq 0 ]
	run admin stream exists rb
	[ "$status" -eq 1 ]
	cat_ rc | cmp - "$HS_T/rc.before"
}

@test "an orphan of a crashed upload overlapping the published segment is not chosen" {
	fresh
	append rd rd 20
	run env HS_OFFLOAD_CRASH_AT=upload timeout 60 "$HS_BIN/hs-offload" --to "$URL" \
		--older-than 0 --stream rd
	[ "$status" -eq 137 ]
	append rd rd 10 21
	run --separate-stderr off --older-than 0 --stream rd
	[ "$status" -eq 0 ]
	[ "$(info rd offload)" = e1n30 ]
	cat_ rd >"$HS_T/rd.before"
	[ "$(wc -l <"$HS_T/rd.before")" -eq 30 ]
	fresh
	run --separate-stderr off --rebuild --stream rd --dry-run
	[ "$status" -eq 0 ]
	[[ $output == *"rebuild rd log "*" 1..e1n30 objects 0 segments 1 create"* ]]
	run --separate-stderr off --rebuild --stream rd
	[ "$status" -eq 0 ]
	cat_ rd | cmp - "$HS_T/rd.before"
}

@test "killed between the create and the manifest: the next run restores the register" {
	fresh
	run env HS_OFFLOAD_CRASH_AT=create timeout 60 "$HS_BIN/hs-offload" --to "$URL" \
		--rebuild --stream rc
	[ "$status" -eq 137 ]
	# The stream exists with its log id, its manifest is still empty.
	[ "$(info rc offload)" = - ] || [ "$(info rc offload)" = 0 ] ||
		[ -z "$(info rc offload)" ]
	run --separate-stderr off --rebuild --stream rc --dry-run
	[ "$status" -eq 0 ]
	[[ $output == *"rebuild rc log "*" restore"* ]]
	run --separate-stderr off --rebuild --stream rc
	[ "$status" -eq 0 ]
	[ "$(info rc offload)" = e1n10 ]
	cat_ rc | cmp - "$HS_T/rc.before"
	run --separate-stderr off --rebuild --stream rc --dry-run
	[[ $output == *"rebuild rc log "*" current"* ]]
}

@test "more than 64 segments outside any manifest object are folded by the rebuild" {
	fresh
	find "$HS_T/tier" -path '*/man/*' -type f -delete
	run --separate-stderr off --rebuild --stream rb --dry-run
	[ "$status" -eq 0 ]
	[[ $output == *"rebuild rb log "*" objects 1 segments 72 create"* ]]
	[ "$(find "$HS_T/tier" -path '*/man/*' -type f | wc -l)" -eq 0 ]
	run --separate-stderr off --rebuild --stream rb
	[ "$status" -eq 0 ]
	[ "$(find "$HS_T/tier" -path '*/man/*' -type f | wc -l)" -eq 1 ]
	[ "$(info rb tier2)" = "72 segments" ]
	cat_ rb | cmp - "$HS_T/rb.after"
	run --separate-stderr off --stream rb --verify -v
	[ "$status" -eq 0 ]
	[[ $stderr == *"72 segments verified"* ]]
}

@test "an orphan longer than the published segments: the records are the same either way" {
	fresh
	append re re 30
	# The crashed run's one segment holds all 30; the retry writes
	# smaller ones, so the orphan overlaps several published segments.
	run env HS_OFFLOAD_CRASH_AT=upload timeout 60 "$HS_BIN/hs-offload" --to "$URL" \
		--older-than 0 --stream re
	[ "$status" -eq 137 ]
	run --separate-stderr off --older-than 0 --stream re --segment-size 100
	[ "$status" -eq 0 ]
	[ "$(info re offload)" = e1n30 ]
	[ "$(info re tier2)" != "1 segments" ]
	cat_ re >"$HS_T/re.before"
	fresh
	# More records after it: the chain must go on past the orphan's end.
	run --separate-stderr off --rebuild --stream re
	[ "$status" -eq 0 ]
	[ "$(info re offload)" = e1n30 ]
	cat_ re | cmp - "$HS_T/re.before"
	append re re 10 31
	run --separate-stderr off --older-than 0 --stream re --segment-size 100
	[ "$status" -eq 0 ]
	cat_ re >"$HS_T/re.before"
	[ "$(wc -l <"$HS_T/re.before")" -eq 40 ]
	fresh
	run --separate-stderr off --rebuild --stream re
	[ "$status" -eq 0 ]
	[ "$(info re offload)" != e1n30 ]
	cat_ re | cmp - "$HS_T/re.before"
}

@test "s3: offload, destroy the cluster, rebuild from the bucket" {
	[ -n "$S3_ADDR" ] || skip "no S3 rig (node and test/s3/node_modules)"
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
	s3=(--endpoint "http://$S3_ADDR" --path-style)
	fresh --tier s3://tier2/rb --tier-endpoint "http://$S3_ADDR" --tier-path-style
	append s3r s3r 500
	cat_ s3r >"$HS_T/s3r.before"
	run --separate-stderr timeout 120 "$HS_BIN/hs-offload" "${s3[@]}" --to s3://tier2/rb \
		--older-than 0 --segment-size 2k
	[ "$status" -eq 0 ]
	[ "$(info s3r offload)" = e1n500 ]
	n=$(info s3r tier2)
	fresh --tier s3://tier2/rb --tier-endpoint "http://$S3_ADDR" --tier-path-style
	run --separate-stderr timeout 120 "$HS_BIN/hs-offload" "${s3[@]}" --to s3://tier2/rb \
		--rebuild
	[ "$status" -eq 0 ]
	[ "$(info s3r offload)" = e1n500 ]
	[ "$(info s3r tier2)" = "$n" ]
	cat_ s3r | cmp - "$HS_T/s3r.before"
}
