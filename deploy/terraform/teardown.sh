#!/bin/sh
# teardown.sh: removes what `fleet bootstrap` made, which is not in
# Terraform's state, so `terraform destroy` leaves nothing behind. Run it as
# the operator role (terraform output operator_role_arn), from
# deploy/terraform, in two steps around `terraform destroy`:
#
#   ./teardown.sh fleet web      # while the coordinators run: the fleet, its
#                                # group, launch template, image(s) and their
#                                # snapshots, and its alarms
#   terraform destroy            # with Terraform's credentials
#   ./teardown.sh alarms         # the coordinators' heartbeat alarm (they
#                                # re-put it while they run) and any <name>-*
#                                # alarm left
#
# Every AWS call here is granted by deploy/iam/operator-policy.json.tftpl,
# and deploy/check proves the policy grants exactly these and bootstrap's.
set -eu

name=$(terraform output -raw secrets_path | sed 's|^/shoal/||')

delete_alarms() { # prefix
	alarms=$(aws cloudwatch describe-alarms --alarm-name-prefix "$1" --query 'MetricAlarms[].AlarmName' --output text)
	for a in $alarms; do
		[ "$a" = None ] && continue
		aws cloudwatch delete-alarms --alarm-names "$a"
		echo "deleted alarm $a"
	done
}

case "${1:-}" in
fleet)
	fleet=${2:?usage: teardown.sh fleet NAME}
	group="$name-$fleet"
	# The fleet first, so the leader stops acting on the group.
	shoal-coordinator fleet delete "$fleet" || echo "fleet $fleet: already gone?"
	if [ "$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$group" --query 'length(AutoScalingGroups)' --output text)" != 0 ]; then
		aws autoscaling delete-auto-scaling-group --auto-scaling-group-name "$group" --force-delete
		echo "deleting group $group (its instances terminate first)"
		n=0
		while [ "$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$group" --query 'length(AutoScalingGroups)' --output text)" != 0 ]; do
			n=$((n + 1)); [ $n -lt 120 ] || { echo "group $group still there after 10 minutes" >&2; exit 1; }
			sleep 5
		done
	fi
	aws ec2 delete-launch-template --launch-template-name "$group" >/dev/null 2>&1 && echo "deleted launch template $group" || echo "launch template $group: already gone"
	# fleet bootstrap tags its images shoal:fleet=<fleet>; each image's EBS
	# snapshots stay (and cost) until deleted too.
	aws ec2 describe-images --owners self --filters "Name=tag:shoal:fleet,Values=$fleet" \
		--query 'Images[].[ImageId, join(`,`, BlockDeviceMappings[].Ebs.SnapshotId)]' --output text |
		while read -r image snaps; do
			[ -n "$image" ] || continue
			aws ec2 deregister-image --image-id "$image"
			echo "deregistered image $image"
			for s in $(echo "$snaps" | tr , ' '); do
				aws ec2 delete-snapshot --snapshot-id "$s"
				echo "deleted snapshot $s"
			done
		done
	delete_alarms "$name-$fleet-"
	;;
alarms)
	delete_alarms "$name-"
	;;
*)
	echo "usage: teardown.sh fleet NAME | teardown.sh alarms" >&2
	exit 2
	;;
esac
