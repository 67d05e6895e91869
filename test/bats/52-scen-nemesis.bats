#!/usr/bin/env bats
# 52-scen-nemesis: one randomized run (issue 4).  For about 20 s under
# load, a nemesis picks faults at random on 5 peers (R=2) and the
# sequencer: kill -9 a peer (at most 5-R-1 down at once, so appends can go
# on), restart a dead peer, pause a peer (SIGSTOP) for 0.3-2 s, cut a
# peer's link or the sequencer's for 0.3-2 s (network namespaces, where
# they work), kill -9 the sequencer and restart it, pause the sequencer, a
# rival hs-serve that takes the stream over for one append (the sequencer
# paused meanwhile, so that the rival's probe of it goes unanswered) and
# is killed (-9) right after; and readers (hs-cat) run during the faults,
# and a follower (hs-tail -F; HS_NEMESIS_FOLLOW=0: none) from the head
# through all of them, their partial histories checked too.  Then
# everything heals, appends must resume, and the final reads pass the
# checker.
#
# The seed is printed; HS_NEMESIS_SEED=N replays the same fault sequence
# (the timing of the system under it still varies).  HS_NEMESIS_N and
# HS_NEMESIS_R change the cluster (default 5 peers, R=2), HS_NEMESIS_SECS
# the duration (20), HS_NEMESIS_RATE the payloads/s per appender (120);
# HS_NEMESIS_NO_RIVAL=1 leaves the rival sequencer out; HS_NEMESIS_MAXDOWN
# peers may be down at once (default N-R-1; more stalls appends, and the
# metadata registers when a majority is down, but must stay safe).

load helpers
load cluster

setup() {
	cl_setup
}

teardown() {
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -f "$HS_T/nemesis.log" ]; then
		echo "# nemesis seed $seed (replay: HS_NEMESIS_SEED=$seed)" >&3
		sed 's/^/# nemesis: /' "$HS_T/nemesis.log" >&3
	fi
	cl_teardown
}

note() {
	echo "$(date +%T.%N | cut -c1-12) $*" >>"$HS_T/nemesis.log"
}

# quorum_up: a starting hs-serve is ready once a register quorum (a
# majority of the peers) and R peers are up: bring enough dead peers back.
quorum_up() {
	while [ $((n - ${#down[@]})) -lt $((n / 2 + 1)) ] ||
		[ $((n - ${#down[@]})) -lt "$CL_R" ]; do
		note "restart p${down[0]} first (quorum)"
		cl_peer_start "${down[0]}"
		down=("${down[@]:1}")
	done
}

# dsleep TENTHS: sleep TENTHS/10 seconds.
dsleep() {
	sleep "$(($1 / 10)).$(($1 % 10))"
}

@test "randomized nemesis (~20 s of kills, pauses and cuts of peers and sequencers)" {
	CL_RATE=${HS_NEMESIS_RATE:-120}
	cl_need_r "${HS_NEMESIS_R:-2}" 1
	seed=${HS_NEMESIS_SEED:-$(($(date +%s%N) / 1000 % 32768))}
	RANDOM=$seed
	echo "# nemesis seed $seed (replay: HS_NEMESIS_SEED=$seed)" >&3
	n=${HS_NEMESIS_N:-5}
	nets=0
	if [ -z "${HS_NEMESIS_NO_NETNS:-}" ] && command -v ip >/dev/null && cl_netns_setup "$n"; then
		cl_netns_member b 101
		nets=1
	else
		echo "# no network namespaces: link cuts become pauses" >&3
	fi
	cl_peers_start "$n"
	cl_serve_start s
	cl_append_start 1 "$(cl_addr s)" --inflight 8
	cl_append_start 2 "$(cl_addr s)" --batch 4 --inflight 8
	# A follower from the head through every fault (hs-tail -F);
	# HS_NEMESIS_FOLLOW=0 leaves it out.
	[ "${HS_NEMESIS_FOLLOW:-1}" = 1 ] && cl_follow_start 1000 "$(cl_addr s)"
	cl_wait_acks 300 15
	down=()
	rival=10
	reader=1
	readers=()
	maxdown=${HS_NEMESIS_MAXDOWN:-$((n - CL_R - 1))}
	end=$((SECONDS + ${HS_NEMESIS_SECS:-20}))
	while [ "$SECONDS" -lt "$end" ]; do
		# A daemon that died without the nemesis is a failure.
		cl_alive
		i=$((RANDOM % n + 1))
		t=$((3 + RANDOM % 18))
		case $((RANDOM % 10)) in
		0 | 1)
			if cl_running "p$i" && [ "${#down[@]}" -lt "$maxdown" ]; then
				note "kill -9 p$i"
				cl_kill9 "p$i"
				down+=("$i")
			elif ! cl_running "p$i"; then
				note "restart p$i"
				cl_peer_start "$i"
				down=("${down[@]/$i/}")
				read -r -a down <<<"${down[*]}"
			fi
			;;
		2)
			if cl_running "p$i"; then
				note "pause p$i for $(dsleep_fmt) s"
				cl_pause "p$i"
				dsleep "$t"
				cl_resume "p$i"
			fi
			;;
		3)
			note "kill -9 s, restart"
			cl_kill9 s
			quorum_up
			if [ "$CL_R" -eq 1 ]; then
				# At R=1 (external peers: the first one holds
				# every record) hs-serve needs that peer.
				for d in "${down[@]}"; do
					note "restart p$d first (R=1)"
					cl_peer_start "$d"
				done
				down=()
			fi
			cl_serve_start s
			;;
		4)
			note "pause s for $(dsleep_fmt) s"
			cl_pause s
			dsleep "$t"
			cl_resume s
			;;
		5)
			note "quiet for $(dsleep_fmt) s"
			dsleep "$t"
			;;
		6)
			[ -z "${HS_NEMESIS_NO_RIVAL:-}" ] || continue
			# A rival sequencer takes the stream over for one
			# append while s is paused (its probe of s goes
			# unanswered; s is fenced and takes the stream back on
			# its next append), then dies with its epoch unclean.
			note "rival b: one append as writer $rival with s paused, then kill -9 b"
			quorum_up
			CL_SNS=b cl_serve_start b
			cl_pause s
			HS_ADDR=$(cl_addr b) timeout -k 2 15 "$CL_WL/append-client" -t 5000 \
				--stream "$CL_STREAM" --writer "$rival" --count 1 \
				>"$HS_T/w$rival" 2>"$HS_T/w$rival.err" 3>&- || true
			cl_resume s
			note "  writer $rival: $(grep -v '^invoke' "$HS_T/w$rival" | tr '\n' ' ')"
			rival=$((rival + 1))
			cl_kill9 b
			;;
		7)
			# A reader during the faults (a partial history: it may
			# stop early, but what it read must be right).
			note "reader t$reader in the background"
			HS_ADDR=$(cl_addr s) HS_WL_TIMEOUT=8 "$CL_WL/read-client" -t 2s "$CL_STREAM" \
				>"$HS_T/t$reader" 2>"$HS_T/t$reader.err" 3>&- &
			readers+=("$!")
			reader=$((reader + 1))
			;;
		8 | 9)
			# A cut link: silent, no reset (a pause without namespaces).
			if [ $((RANDOM % 3)) -eq 0 ]; then x=s; else x=$i; fi
			if [ "$nets" = 1 ]; then
				note "cut the link of $x for $(dsleep_fmt) s"
				cl_link_down "$x"
				dsleep "$t"
				cl_link_up "$x"
			elif [ "$x" = s ] || cl_running "p$x"; then
				[ "$x" = s ] || x=p$x
				note "pause $x for $(dsleep_fmt) s (no namespaces)"
				cl_pause "$x"
				dsleep "$t"
				cl_resume "$x"
			fi
			;;
		esac
		sleep "0.$((2 + RANDOM % 8))"
	done
	note "heal"
	for i in $(seq "$n"); do
		cl_running "p$i" || cl_peer_start "$i"
	done
	sed 's/^/# nemesis: /' "$HS_T/nemesis.log" >&3
	for i in "${readers[@]}"; do
		st=0
		wait "$i" || st=$?
		echo "# reader $i: status $st" >&3
	done
	cl_wait_acks 300 30
	cl_append_stop
	sleep 1
	# The checker runs even when a follower failed: its verdict on the
	# history is what tells a lost record from a wrong report.
	local fst=0
	cl_follow_stop || fst=1
	cl_check "$(cl_addr s)" 600
	cl_stop s
	[ "$fst" = 0 ]
}

dsleep_fmt() {
	echo "$((t / 10)).$((t % 10))"
}
