#!/bin/sh
# teardown.sh: removes what `fleet bootstrap` made, which is not in
# Terraform's state, so `terraform destroy` leaves nothing behind. Run it as
# the operator role (terraform output operator_role_arn), from
# deploy/terraform, in two steps around `terraform destroy`:
#
#   ./teardown.sh fleet web      # while the coordinators run: the fleet, its
#                                # group, launch template, image(s) and their
#                                # snapshots (fleet delete --purge)
#   terraform destroy            # with Terraform's credentials
#   ./teardown.sh alarms         # the coordinators' heartbeat alarm (they
#                                # re-put it while they run) and any other
#                                # Shoal alarm of this cluster left
#
# Every AWS call here and in `fleet delete --purge` is granted by
# deploy/iam/operator-policy.json.tftpl, and deploy/check proves the policy
# grants exactly those and bootstrap's.
set -eu

name=$(terraform output -raw secrets_path | sed 's|^/shoal/||')

# This cluster's alarms only: another stack's names may share the prefix
# ("shoal-prod-…" starts with "shoal-"), so an alarm goes only if it is on
# the Shoal namespace with ShoalCluster=<name>, as the coordinators' own
# reconciler tells theirs apart.
delete_alarms() { # prefix cluster
	# Listed first, so a failed call stops the script (set -e).
	alarms=$(aws cloudwatch describe-alarms --alarm-name-prefix "$1" --output text \
		--query "MetricAlarms[].[AlarmName, Namespace, join(',', Dimensions[?Name=='ShoalCluster'].Value)]")
	echo "$alarms" | while read -r a ns cluster; do
		[ "$ns" = Shoal ] && [ "$cluster" = "$2" ] || continue
		aws cloudwatch delete-alarms --alarm-names "$a"
		echo "deleted alarm $a"
	done
}

case "${1:-}" in
fleet)
	fleet=${2:?usage: teardown.sh fleet NAME}
	# The fleet, then (with these AWS credentials, in this process) its
	# group, launch template, images and their snapshots. The leader deletes
	# the fleet's alarms once the fleet is gone; `alarms` below sweeps any
	# left.
	shoal-coordinator fleet delete "$fleet" --purge --asg "$name-$fleet"
	;;
alarms)
	delete_alarms "$name-" "$name"
	;;
*)
	echo "usage: teardown.sh fleet NAME | teardown.sh alarms" >&2
	exit 2
	;;
esac
