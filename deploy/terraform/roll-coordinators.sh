#!/bin/sh
# roll-coordinators.sh: replace the coordinators one at a time (a new AMI, new
# user data, a new instance type), each on its own data volume, waiting for
# each to rejoin and catch up before touching the next. Terraform alone would
# never do this: aws_instance.coordinator ignores ami and user_data changes,
# so a plain `terraform apply` leaves running coordinators alone.
#
# Run from deploy/terraform, with Terraform's AWS credentials and the
# operator's Shoal credentials (SHOAL_ADDR = the control_address output,
# SHOAL_CA_CERT, SHOAL_CERT, SHOAL_KEY, SHOAL_TOKEN):
#
#   ./roll-coordinators.sh            # every node, 0 first
#   ./roll-coordinators.sh 2          # only node 2
#
# Each step: check the cluster is whole (a leader, every node a voter the
# leader reaches), then
# `terraform apply -replace` that node's instance (the attachment stops it,
# so it hands over leadership and the volume is detached cleanly; the new
# instance gets the same address and volume back), then wait until the node
# answers with a leader and has applied what the leader had committed.
set -eu

count=$(terraform output -json coordinator_instance_ids | tr -cd ',' | wc -c)
count=$((count + 1))
name=$(terraform output -raw secrets_path | sed 's|^/shoal/||')
nodes=${*:-$(seq 0 $((count - 1)))}
# Each wait is bounded: 10 minutes covers a boot, the volume, and catch-up.
tries=120

status() { shoal-coordinator status -o json "$@"; }

field() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -n 1; }

# Whole: a leader, every node a voter, and none the leader cannot reach. A
# stopped node stays a voter; replacing another while it is down would take
# two of three away and lose the quorum.
whole() {
	s=$(status) || return 1
	[ -n "$(echo "$s" | field leader_id)" ] || return 1
	if echo "$s" | grep -q '"unreachable_since"'; then return 1; fi
	[ "$(echo "$s" | grep -o '"voter": *true' | wc -l)" -ge "$count" ]
}

for i in $nodes; do
	node="$name-coordinator-$i"
	echo "== $node: waiting for a whole cluster"
	n=0
	until whole; do
		n=$((n + 1)); [ $n -lt $tries ] || { echo "cluster not whole; stopping before $node" >&2; exit 1; }
		sleep 5
	done
	commit=$(status | field commit_index)
	echo "== $node: replacing (leader had committed $commit)"
	terraform apply -auto-approve -replace="module.coordinators.aws_instance.coordinator[$i]"
	echo "== $node: waiting for it to rejoin and catch up"
	n=0
	while :; do
		# Through the NLB each call may reach any node; --stale answers from
		# the node itself, so wait for one answered by the new instance.
		if s=$(status --stale 2>/dev/null) && [ "$(echo "$s" | field node_id)" = "$node" ] &&
			[ -n "$(echo "$s" | field leader_id)" ] && [ "$(echo "$s" | field applied_index)" -ge "$commit" ]; then
			break
		fi
		n=$((n + 1)); [ $n -lt $tries ] || { echo "$node did not rejoin; stopping (see its log: aws ssm start-session)" >&2; exit 1; }
		sleep 5
	done
	echo "== $node: back, following $(echo "$s" | field leader_id)"
done
