#!/usr/bin/env bash
# node-ctl.sh: turn a fresh Ubuntu 24.04 VM into the article's control plane (node-0):
# cri-o, kubeadm/kubelet/kubectl, `kubeadm init` on the node's internal IP, Cilium via its CLI.
#
# Run as root (the article: `sudo -i`). Parameters come from the environment:
#   IP                 this node's internal address (required; the article's 10.168.0.2)
#   NODE_NAME          short hostname and Kubernetes node name (default node-0)
#   K8S_VERSION        kubeadm/kubelet/kubectl minor version (default 1.33)
#   CRIO_VERSION       cri-o minor version (default: K8S_VERSION)
#   K8S_REPO, CRIO_REPO  apt repositories (default: pkgs.k8s.io's for those versions)
#   CILIUM_VERSION     Cilium (default 1.17.4)
#   CILIUM_CLI_VERSION cilium CLI release (default v0.18.3)
#   POD_CIDR           kubeadm's --pod-network-cidr (default 10.10.0.0/16)
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

: "${IP:?set IP to the internal address of this node, e.g. IP=10.168.0.2}"
NODE_NAME="${NODE_NAME:-node-0}"
CILIUM_VERSION="${CILIUM_VERSION:-1.17.4}"
CILIUM_CLI_VERSION="${CILIUM_CLI_VERSION:-v0.18.3}"
POD_CIDR="${POD_CIDR:-10.10.0.0/16}"
R="${LABYRINTH_ROOT:-}"
# the article sets HOME=/root: kubectl and the cilium CLI look for ~/.kube/config there
export HOME="${HOME:-/root}"
export KUBECONFIG="$R/etc/kubernetes/admin.conf"
CRI_SOCKET="unix:///var/run/crio/crio.sock"
# shellcheck source=node-lib.sh
. "${BASH_SOURCE[0]%/*}/node-lib.sh"  # beside this script (always run by its path)

check_common_parameters
[[ $CILIUM_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "CILIUM_VERSION=$CILIUM_VERSION: give a version like 1.17.4"
[[ $CILIUM_CLI_VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "CILIUM_CLI_VERSION=$CILIUM_CLI_VERSION: give a release like v0.18.3"
[[ $POD_CIDR =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] || die "POD_CIDR=$POD_CIDR is not an IPv4 CIDR"
check_root

on_exit() {
	report_failed_phase $?
}
trap on_exit EXIT

# --- the control plane ----------------------------------------------------------------------------

done_kubeadm_init() { [ -f "$R/etc/kubernetes/admin.conf" ]; }
run_kubeadm_init() {
	kubeadm init --apiserver-advertise-address="$IP" --pod-network-cidr="$POD_CIDR" \
		--node-name="$NODE_NAME" --cri-socket="$CRI_SOCKET"
}

done_kubeconfig() { cmp -s "$R/etc/kubernetes/admin.conf" "$R$HOME/.kube/config"; }
run_kubeconfig() {
	mkdir -p "$R$HOME/.kube"
	cp "$R/etc/kubernetes/admin.conf" "$R$HOME/.kube/config"
	chmod 600 "$R$HOME/.kube/config"
}

done_cilium_cli() { [ -x "$R/usr/local/bin/cilium" ]; }
run_cilium_cli() {
	local arch=amd64 tmp url
	if [ "$(uname -m)" = aarch64 ]; then arch=arm64; fi
	url="https://github.com/cilium/cilium-cli/releases/download/$CILIUM_CLI_VERSION/cilium-linux-$arch.tar.gz"
	tmp="$(mktemp -d)"
	(cd "$tmp" && curl -fsSLO "$url" && curl -fsSLO "$url.sha256sum" && sha256sum --check "cilium-linux-$arch.tar.gz.sha256sum")
	tar -xzf "$tmp/cilium-linux-$arch.tar.gz" -C "$R/usr/local/bin"
	rm -rf "$tmp"
}

# The article installs Cilium with its defaults: its own cluster-pool IPAM hands out the 10.0.N.0/24
# pod ranges the journey shows (10.0.1.15 → 10.0.2.215); POD_CIDR only shapes kube-proxy's rules.
done_cilium_install() { kubectl -n kube-system get daemonset cilium >/dev/null 2>&1; }
run_cilium_install() {
	cilium install --version "$CILIUM_VERSION"
}

done_cilium_ready() { return 1; }
run_cilium_ready() {
	cilium status --wait --wait-duration 10m
}

done_node_ready() { return 1; }
run_node_ready() {
	kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=600s
	kubectl get nodes
}

PHASES=(hostname kernel repos packages crio kubelet kubeadm-init kubeconfig cilium-cli cilium-install cilium-ready node-ready)
echo "::plan ${PHASES[*]}"
for p in "${PHASES[@]}"; do
	phase "$p"
done
echo "::complete $NODE_NAME control-plane"
