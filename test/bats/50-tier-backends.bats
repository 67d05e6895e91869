#!/usr/bin/env bats
# Tier2 backends through hs-tiertool: S3 against s3rver 3.7.1 behind the
# SigV4-checking proxy (test/s3/start), cross-checked with Debian's awscli;
# WebHDFS against test/webhdfs/fake.py - a PROTOCOL FAKE, not Hadoop: these
# tests show the client follows the documented REST flow, nothing about a
# real HDFS cluster.

load helpers

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

# bats 1.8 (Debian 12) cannot skip from setup_file: a missing S3 rig is
# noted in S3_NONE (hs_s3_start) and each s3 test skips with it (the WebHDFS
# test still runs).
setup_file() {
	hs_tmpdir
	hs_s3_start || return 1
	head -c 20000000 /dev/urandom >"$HS_T/big"
	printf 'hello, tier2\n' >"$HS_T/small"

	python3 "$TOP/test/webhdfs/fake.py" --root "$HS_T/hdfs" --user tester \
		</dev/null >"$HS_T/fake.out" 2>"$HS_T/fake.err" 3>&- &
	echo $! >"$HS_T/fake.pid"
	local i
	for i in $(seq 100); do
		WH_ADDR=$(sed -n 's/^webhdfs-fake listening on //p' "$HS_T/fake.out")
		[ -n "$WH_ADDR" ] && break
		sleep 0.1
	done
	[ -n "$WH_ADDR" ] || return 1
	export WH_ADDR
}

teardown_file() {
	[ -n "${HS_T:-}" ] || return 0
	hs_s3_stop
	if [ -s "$HS_T/fake.pid" ]; then
		kill "$(cat "$HS_T/fake.pid")" 2>/dev/null || true
	fi
	hs_tmpdir_remove
}

setup() {
	if [[ "$BATS_TEST_DESCRIPTION" == s3:* ]] && [ -n "$S3_NONE" ]; then
		skip "$S3_NONE"
	fi
	export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION
}

# hs-tiertool against the rig, path style.
tt() {
	timeout "$HS_TOOL_TIMEOUT" "$HS_TOOLS/hs-tiertool" \
		--endpoint "http://$S3_ADDR" --path-style "$@"
}

wh() {
	timeout "$HS_TOOL_TIMEOUT" "$HS_TOOLS/hs-tiertool" --user tester "$@"
}

# Debian's awscli (not whatever aws is first on PATH), isolated from any
# local configuration.
awsc() {
	AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null \
	AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	AWS_PAGER= timeout 60 /usr/bin/aws --endpoint-url "http://$S3_ADDR" "$@"
}

@test "s3: small object put, head, get, list, delete" {
	run tt s3://tier2/t1 put dir/obj.bin "$HS_T/small"
	[ "$status" -eq 0 ]
	run tt s3://tier2/t1 head dir/obj.bin
	[ "$status" -eq 0 ]
	[ "$output" = 13 ]
	tt s3://tier2/t1 get dir/obj.bin >"$HS_T/out"
	cmp "$HS_T/out" "$HS_T/small"
	run tt s3://tier2/t1 get dir/obj.bin --offset 7 --length 5
	[ "$output" = tier2 ]
	run tt s3://tier2/t1 list
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'dir/obj.bin\t13')" ]
	run tt s3://tier2/t1 delete dir/obj.bin
	[ "$status" -eq 0 ]
	run tt s3://tier2/t1 delete dir/obj.bin
	[ "$status" -eq 0 ]
	run tt s3://tier2/t1 get dir/obj.bin
	[ "$status" -eq 66 ]
	[[ "$output" == *NoSuchKey* ]]
	run tt s3://tier2/t1 head dir/obj.bin
	[ "$status" -eq 66 ]
}

@test "s3: 20 MiB streaming put is a multipart upload; gets are byte-identical" {
	run tt s3://tier2/t2 put seg/big - <"$HS_T/big"
	[ "$status" -eq 0 ]
	# 8 MiB parts: create, three parts, complete - all signed correctly.
	grep -q 'POST /tier2/t2/seg/big?uploads=: 200' "$HS_T/s3/proxy.err"
	grep -q 'PUT /tier2/t2/seg/big?partNumber=3&uploadId=.*: 200' "$HS_T/s3/proxy.err"
	grep -q 'POST /tier2/t2/seg/big?uploadId=.*: 200' "$HS_T/s3/proxy.err"
	run tt s3://tier2/t2 head seg/big
	[ "$output" = 20000000 ]
	tt s3://tier2/t2 get seg/big >"$HS_T/out"
	cmp "$HS_T/out" "$HS_T/big"
	# Ranges: inside, across a part boundary, to the end, past the end.
	tt s3://tier2/t2 get seg/big --offset 8388000 --length 2000 >"$HS_T/out"
	tail -c +8388001 "$HS_T/big" | head -c 2000 | cmp - "$HS_T/out"
	tt s3://tier2/t2 get seg/big --offset 19999000 >"$HS_T/out"
	tail -c 1000 "$HS_T/big" | cmp - "$HS_T/out"
	tt s3://tier2/t2 get seg/big --offset 19999990 --length 100 >"$HS_T/out"
	[ "$(stat -c %s "$HS_T/out")" -eq 10 ]
	tt s3://tier2/t2 get seg/big --offset 20000000 --length 10 >"$HS_T/out"
	[ "$(stat -c %s "$HS_T/out")" -eq 0 ]
	# Suffix ranges are never sent (s3rver gets them wrong).
	! grep -q 'bytes=-' "$HS_T/s3/proxy.err"
}

@test "s3: awscli lists and reads back what hs-tiertool wrote" {
	[ -x /usr/bin/aws ] || skip "Debian's awscli is not installed (./bootstrap deps installs it)"
	tt s3://tier2/t3 put a/one "$HS_T/small"
	tt s3://tier2/t3 put a/two - <"$HS_T/big"
	run awsc s3 ls --recursive s3://tier2/t3/
	[ "$status" -eq 0 ]
	[[ "$output" == *" 13 t3/a/one"* ]]
	[[ "$output" == *" 20000000 t3/a/two"* ]]
	awsc s3 cp --only-show-errors s3://tier2/t3/a/two "$HS_T/aws.out"
	cmp "$HS_T/aws.out" "$HS_T/big"
	# And the other way: awscli writes, hs-tiertool reads and lists.
	awsc s3 cp --only-show-errors "$HS_T/small" s3://tier2/t3/a/three
	tt s3://tier2/t3 get a/three | cmp - "$HS_T/small"
	run tt s3://tier2/t3 list a/
	[ "${lines[*]}" = "$(printf 'a/one\t13 a/three\t13 a/two\t20000000')" ]
}

@test "s3: a wrong secret is refused (77, with the S3 error code)" {
	tt s3://tier2/t4 put k "$HS_T/small"
	AWS_SECRET_ACCESS_KEY=not-the-secret run tt s3://tier2/t4 get k
	[ "$status" -eq 77 ]
	[[ "$output" == *"HTTP 403 SignatureDoesNotMatch"* ]]
	AWS_SECRET_ACCESS_KEY=not-the-secret run tt s3://tier2/t4 put k2 "$HS_T/small"
	[ "$status" -eq 77 ]
	AWS_ACCESS_KEY_ID=NOBODY run tt s3://tier2/t4 list
	[ "$status" -eq 77 ]
	[[ "$output" == *InvalidAccessKeyId* ]]
	run tt s3://tier2/t4 list
	[ "$output" = "$(printf 'k\t13')" ]
	unset AWS_ACCESS_KEY_ID
	run tt s3://tier2/t4 list
	[ "$status" -eq 77 ]
	[[ "$output" == *"no S3 credentials"* ]]
}

@test "s3: the proxy refuses mis-signed requests that s3rver would take" {
	local s3port h
	s3port=$(sed -n 's/^S3rver listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$HS_T/s3/s3rver.out")
	h="x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	sign() { curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 -u S3RVER:S3RVER -H "$h" "$@"; }
	# Unsorted and unencoded query strings are signed verbatim by curl.
	[ "$(sign "http://127.0.0.1:$s3port/tier2?prefix=t&list-type=2")" = 200 ]
	[ "$(sign "http://$S3_ADDR/tier2?prefix=t&list-type=2")" = 403 ]
	[ "$(sign "http://$S3_ADDR/tier2?list-type=2&prefix=t1/")" = 403 ]
	[ "$(sign "http://$S3_ADDR/tier2?list-type=2&prefix=t1%2F")" = 200 ]
	# s3rver itself does not check signatures at all.
	[ "$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 -u S3RVER:wrong -H "$h" "http://127.0.0.1:$s3port/tier2?list-type=2")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 -u S3RVER:wrong -H "$h" "http://$S3_ADDR/tier2?list-type=2")" = 403 ]
}

@test "s3: paginated listing, credentials file, virtual-host addressing" {
	local i
	for i in 1 2 3 4 5; do
		tt s3://tier2/t6 put "k$i" "$HS_T/small"
	done
	HS_TIER_S3_LIST_PAGE=2 run tt s3://tier2/t6 list
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 5 ]
	[ "${lines[4]}" = "$(printf 'k5\t13')" ]
	grep -q 'continuation-token=.*max-keys=2.*: 200' "$HS_T/s3/proxy.err"

	printf '# test\n[other]\naws_access_key_id = X\n[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$HS_T/creds"
	AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= run tt --credentials "$HS_T/creds" s3://tier2/t6 head k1
	[ "$status" -eq 0 ]
	[ "$output" = 13 ]
	printf 'aws_access_key_id = S3RVER\naws_secret_access_key = nope\n' >"$HS_T/creds"
	run tt --credentials "$HS_T/creds" s3://tier2/t6 head k1
	[ "$status" -eq 77 ]

	# s3rver runs with --service-endpoint localhost: tier2.s3.localhost.
	run timeout 30 "$HS_TOOLS/hs-tiertool" --endpoint "http://s3.localhost:${S3_ADDR#*:}" \
		s3://tier2/t6 get k3
	[ "$status" -eq 0 ]
	[ "$output" = "hello, tier2" ]
}

@test "webhdfs (protocol fake): round trips, ranges, exclusive put, user.name" {
	local u="webhdfs://$WH_ADDR/tier"
	run wh "$u" put logs/a/small "$HS_T/small"
	[ "$status" -eq 0 ]
	run wh "$u" put logs/big - <"$HS_T/big"
	[ "$status" -eq 0 ]
	wh "$u" put logs-x "$HS_T/small"
	run wh "$u" list
	[ "${lines[*]}" = "$(printf 'logs-x\t13 logs/a/small\t13 logs/big\t20000000')" ]
	run wh "$u" list logs/b
	[ "$output" = "$(printf 'logs/big\t20000000')" ]
	run wh "$u" head logs/big
	[ "$output" = 20000000 ]
	wh "$u" get logs/big >"$HS_T/out"
	cmp "$HS_T/out" "$HS_T/big"
	wh "$u" get logs/big --offset 8388600 --length 1000 >"$HS_T/out"
	tail -c +8388601 "$HS_T/big" | head -c 1000 | cmp - "$HS_T/out"
	wh "$u" get logs/big --offset 20000005 >"$HS_T/out"
	[ "$(stat -c %s "$HS_T/out")" -eq 0 ]
	# No temporary files left behind.
	[ -z "$(find "$HS_T/hdfs" -name '.hs-tmp*')" ]
	run wh --excl "$u" put logs-x "$HS_T/big"
	[ "$status" -eq 65 ]
	run wh "$u" head logs-x
	[ "$output" = 13 ]
	run wh "$u" put logs-x "$HS_T/big"
	[ "$status" -eq 0 ]
	run wh "$u" head logs-x
	[ "$output" = 20000000 ]
	run timeout 30 "$HS_TOOLS/hs-tiertool" --user mallory "$u" list
	[ "$status" -eq 77 ]
	[[ "$output" == *SecurityException* ]]
	run wh "$u" delete logs/a/small
	[ "$status" -eq 0 ]
	run wh "$u" get logs/a/small
	[ "$status" -eq 66 ]
	[[ "$output" == *FileNotFoundException* ]]
	run wh "$u" delete logs/a/small
	[ "$status" -eq 0 ]
}
