#!/usr/bin/env bats
# 00-cli: every binary's --help, --version, usage errors, man page and
# completion agree with each other.

load helpers
: "${HS_TOP:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"

bins() {
	local b
	for b in "$HS_BUILD"/bin/hs-*; do
		[ -x "$b" ] && basename "$b"
	done
}

long_flags() { # the long flags a text mentions, sorted, unique
	grep -oE -- '--[a-z][a-z0-9-]+' | sort -u
}

@test "there are binaries to check" {
	run bins
	[ "$status" -eq 0 ]
	[ -n "$output" ]
}

@test "--help goes to stdout and exits 0; --version prints name and version" {
	for b in $(bins); do
		run timeout 5 "$HS_BUILD/bin/$b" --help
		[ "$status" -eq 0 ] || { echo "$b --help: $status"; false; }
		[[ "$output" == *"$b"* ]] || { echo "$b --help lacks its name"; false; }
		run timeout 5 "$HS_BUILD/bin/$b" --version
		[ "$status" -eq 0 ]
		[[ "$output" =~ ^$b\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "$b --version: $output"; false; }
	done
}

@test "an unknown flag is a usage error: exit 64, message on stderr, stdout empty" {
	for b in $(bins); do
		run --separate-stderr timeout 5 "$HS_BUILD/bin/$b" --no-such-flag
		[ "$status" -eq 64 ] || { echo "$b: status $status"; false; }
		[ -z "$output" ] || { echo "$b wrote to stdout: $output"; false; }
		[[ "$stderr" == *"no-such-flag"* ]] || { echo "$b stderr: $stderr"; false; }
	done
}

@test "every flag in --help is in the man page and the completion, and back" {
	for b in $(bins); do
		help=$("$HS_BUILD/bin/$b" --help | long_flags)
		man=$(long_flags < "$HS_TOP/docs/man1/$b.1.scd")
		# Lines that ask hs-admin for stream or subscription names use hs-admin's flags.
		comp=$(grep -Ev 'hs-admin .*(stream|sub) list' "$HS_TOP/completions/$b" | long_flags)
		for f in $help; do
			grep -qx -- "$f" <<<"$man" || { echo "$b: $f not in man page"; false; }
			grep -qx -- "$f" <<<"$comp" || { echo "$b: $f not in completion"; false; }
		done
		for f in $comp; do
			grep -qx -- "$f" <<<"$help" || { echo "$b: completion has $f, --help does not"; false; }
		done
	done
}

@test "man pages have the required sections and match their scdoc source" {
	for b in $(bins); do
		src="$HS_TOP/docs/man1/$b.1.scd"
		for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES "EXIT STATUS" EXAMPLES; do
			grep -q "^# $s\$" "$src" || { echo "$b: no $s section"; false; }
		done
		if command -v scdoc >/dev/null; then
			diff <(scdoc < "$src") "$HS_TOP/docs/man1/$b.1" ||
				{ echo "$b.1 is stale: run make man"; false; }
		fi
	done
}

@test "completions load in bash and complete flags" {
	for b in $(bins); do
		run bash -c "source '$HS_TOP/completions/$b'; COMP_WORDS=($b --he); COMP_CWORD=1; \
			fn=\$(complete -p $b | sed 's/.*-F \([^ ]*\) .*/\1/'); \$fn; echo \${COMPREPLY[@]}"
		[ "$status" -eq 0 ]
		[[ "$output" == *--help* ]] || { echo "$b: $output"; false; }
	done
}
