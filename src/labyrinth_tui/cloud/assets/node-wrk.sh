#!/usr/bin/env bash
# node-wrk.sh: turn a fresh Ubuntu 24.04 VM into one of the article's worker nodes (node-1, node-2):
# cri-o and kubeadm/kubelet, then `kubeadm join` the control plane when a join configuration is given.
#
# Run as root (the article: `sudo -i`). Parameters come from the environment:
#   IP                 this node's internal address (required; the article's 10.168.0.4 / 10.168.0.5)
#   NODE_NAME          short hostname and Kubernetes node name (required: node-1, node-2)
#   K8S_VERSION        kubeadm/kubelet/kubectl minor version (default 1.33)
#   CRIO_VERSION       cri-o minor version (default: K8S_VERSION)
#   K8S_REPO, CRIO_REPO  apt repositories (default: pkgs.k8s.io's for those versions)
#   JOIN_CONFIG        a kubeadm JoinConfiguration file (labyrinth uploads one, mode 0600, and it is
#                      removed after use); without it the script stops before the join, and you paste
#                      the control plane's `kubeadm token create --print-join-command` as in the article
#   LABYRINTH_ROOT     prefix of every path this script reads or writes; empty on a real node
#                      (the tests run it in a sandbox with fake system commands)
#
# Idempotent: each phase first checks whether its work is already done, so a re-run resumes where
# a failed run stopped. Progress is printed as `::plan`, `::phase`, `::done`, `::skip`, `::fail`
# lines, one per line, which labyrinth turns into progress steps. node-lib.sh (what both node scripts
# share) must sit beside this file: bootstrap uploads the two together.
set -euo pipefail
# one ordered stream: the failing command's own words land next to the phase that ran it
exec 2>&1

: "${IP:?set IP to the internal address of this node, e.g. IP=10.168.0.4}"
NODE_NAME="${NODE_NAME:?set NODE_NAME to the short name of this worker, e.g. NODE_NAME=node-1}"
JOIN_CONFIG="${JOIN_CONFIG:-}"
R="${LABYRINTH_ROOT:-}"
# shellcheck source=node-lib.sh
. "${BASH_SOURCE[0]%/*}/node-lib.sh"  # beside this script (always run by its path)

check_common_parameters
check_root

forget_join_config() {
	# the file holds the bootstrap token: it must not outlive this run, whatever happened
	if [ -n "$JOIN_CONFIG" ]; then
		rm -f "$R$JOIN_CONFIG"
	fi
}

on_exit() {
	report_failed_phase $?
	forget_join_config
}
trap on_exit EXIT

# --- the worker -----------------------------------------------------------------------------------

# joined: kubeadm join leaves the kubelet its cluster credentials
done_join() { [ -f "$R/etc/kubernetes/kubelet.conf" ]; }
run_join() {
	kubeadm join --config "$R$JOIN_CONFIG"
}

PHASES=(hostname kernel repos packages crio kubelet)
if [ -n "$JOIN_CONFIG" ] || done_join; then
	PHASES+=(join)
fi
if [ -n "$JOIN_CONFIG" ] && ! done_join && [ ! -f "$R$JOIN_CONFIG" ]; then
	die "JOIN_CONFIG=$JOIN_CONFIG does not exist"
fi
echo "::plan ${PHASES[*]}"
for p in "${PHASES[@]}"; do
	phase "$p"
done
if [[ " ${PHASES[*]} " == *" join "* ]]; then
	echo "::complete $NODE_NAME worker"
else
	echo "::complete $NODE_NAME worker-unjoined"
	echo "$NODE_NAME is ready to join: run the join command that the control plane prints for"
	echo "  kubeadm token create --print-join-command"
fi
