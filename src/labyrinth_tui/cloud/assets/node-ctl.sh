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
# lines, one per line, which labyrinth turns into progress steps.
set -euo pipefail
# one ordered stream: the failing command's own words land next to the phase that ran it
exec 2>&1

: "${IP:?set IP to the internal address of this node, e.g. IP=10.168.0.2}"
NODE_NAME="${NODE_NAME:-node-0}"
K8S_VERSION="${K8S_VERSION:-1.33}"
CRIO_VERSION="${CRIO_VERSION:-$K8S_VERSION}"
# where the packages come from: the community repositories, unless a mirror is given
K8S_REPO="${K8S_REPO:-https://pkgs.k8s.io/core:/stable:/v$K8S_VERSION/deb/}"
CRIO_REPO="${CRIO_REPO:-https://pkgs.k8s.io/addons:/cri-o:/stable:/v$CRIO_VERSION/deb/}"
CILIUM_VERSION="${CILIUM_VERSION:-1.17.4}"
CILIUM_CLI_VERSION="${CILIUM_CLI_VERSION:-v0.18.3}"
POD_CIDR="${POD_CIDR:-10.10.0.0/16}"
R="${LABYRINTH_ROOT:-}"
# the article sets HOME=/root: kubectl and the cilium CLI look for ~/.kube/config there
export HOME="${HOME:-/root}"
export KUBECONFIG="$R/etc/kubernetes/admin.conf"
export DEBIAN_FRONTEND=noninteractive
CRI_SOCKET="unix:///var/run/crio/crio.sock"
# a fresh cloud VM runs unattended-upgrades at boot: wait for its dpkg lock instead of failing
APT=(apt-get -y -q -o DPkg::Lock::Timeout=600)
PHASE=""

die() {
	echo "node-ctl.sh: $*"
	exit 2
}

[[ $IP =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "IP=$IP is not an IPv4 address"
[[ $NODE_NAME =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "NODE_NAME=$NODE_NAME is not a short lowercase hostname"
[[ $K8S_VERSION =~ ^1\.[0-9]+$ ]] || die "K8S_VERSION=$K8S_VERSION: give a minor version like 1.33"
[[ $CRIO_VERSION =~ ^1\.[0-9]+$ ]] || die "CRIO_VERSION=$CRIO_VERSION: give a minor version like 1.33"
[[ $K8S_REPO =~ ^https://[A-Za-z0-9./:_~-]+/$ ]] || die "K8S_REPO=$K8S_REPO: give an https:// URL ending in /"
[[ $CRIO_REPO =~ ^https://[A-Za-z0-9./:_~-]+/$ ]] || die "CRIO_REPO=$CRIO_REPO: give an https:// URL ending in /"
[[ $CILIUM_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "CILIUM_VERSION=$CILIUM_VERSION: give a version like 1.17.4"
[[ $CILIUM_CLI_VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "CILIUM_CLI_VERSION=$CILIUM_CLI_VERSION: give a release like v0.18.3"
[[ $POD_CIDR =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] || die "POD_CIDR=$POD_CIDR is not an IPv4 CIDR"
[ "$(id -u)" -eq 0 ] || die "run as root (sudo -i, as in the article)"

on_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ] && [ -n "$PHASE" ]; then
		echo "::fail $PHASE $rc"
	fi
}
trap on_exit EXIT

# phase NAME: skip it when done_NAME says so, else run_NAME, bracketed by markers
phase() {
	local name="$1" fn="${1//-/_}"
	if "done_$fn"; then
		echo "::skip $name"
		return 0
	fi
	PHASE="$name"
	echo "::phase $name"
	"run_$fn"
	echo "::done $name"
	PHASE=""
}

# --- shared with node-wrk.sh ----------------------------------------------------------------------

# the article forgot this: without it the node registers as node-1.us-east4-b.c.<project>.internal
done_hostname() { [ "$(hostname)" = "$NODE_NAME" ] && grep -qs "^$IP $NODE_NAME\$" "$R/etc/hosts"; }
run_hostname() {
	hostnamectl set-hostname "$NODE_NAME"
	if ! grep -qs "^$IP $NODE_NAME\$" "$R/etc/hosts"; then
		echo "$IP $NODE_NAME" >>"$R/etc/hosts"
	fi
}

# the files are written last: their presence means the live settings were applied too
done_kernel() {
	[ -f "$R/etc/modules-load.d/labyrinth-k8s.conf" ] && [ -f "$R/etc/sysctl.d/99-labyrinth-k8s.conf" ] &&
		[ -z "$(swapon --show --noheadings)" ]
}
run_kernel() {
	modprobe overlay
	modprobe br_netfilter
	sysctl -w net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 net.ipv4.ip_forward=1
	swapoff -a
	if [ -f "$R/etc/fstab" ]; then
		sed -i -E 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# \1/' "$R/etc/fstab"
	fi
	printf '%s\n' overlay br_netfilter >"$R/etc/modules-load.d/labyrinth-k8s.conf"
	printf '%s\n' 'net.bridge.bridge-nf-call-iptables = 1' 'net.bridge.bridge-nf-call-ip6tables = 1' \
		'net.ipv4.ip_forward = 1' >"$R/etc/sysctl.d/99-labyrinth-k8s.conf"
}

done_repos() {
	grep -qsF " $K8S_REPO " "$R/etc/apt/sources.list.d/kubernetes.list" &&
		grep -qsF " $CRIO_REPO " "$R/etc/apt/sources.list.d/cri-o.list"
}
run_repos() {
	local k8s="$K8S_REPO" crio="$CRIO_REPO"
	"${APT[@]}" update
	"${APT[@]}" install apt-transport-https ca-certificates curl gpg
	install -d -m 755 "$R/etc/apt/keyrings"
	curl -fsSL "${k8s}Release.key" | gpg --batch --yes --dearmor -o "$R/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
	curl -fsSL "${crio}Release.key" | gpg --batch --yes --dearmor -o "$R/etc/apt/keyrings/cri-o-apt-keyring.gpg"
	# signed-by names the path on the node itself, never the LABYRINTH_ROOT prefix
	echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] $k8s /" >"$R/etc/apt/sources.list.d/kubernetes.list"
	echo "deb [signed-by=/etc/apt/keyrings/cri-o-apt-keyring.gpg] $crio /" >"$R/etc/apt/sources.list.d/cri-o.list"
}

installed() { # installed PACKAGE VERSION-PREFIX
	dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | grep -q "^install ok installed $2"
}
done_packages() {
	installed cri-o "$CRIO_VERSION." && installed kubelet "$K8S_VERSION." &&
		installed kubeadm "$K8S_VERSION." && installed kubectl "$K8S_VERSION."
}
run_packages() {
	"${APT[@]}" update
	"${APT[@]}" install cri-o kubelet kubeadm kubectl
	# an unattended upgrade must not move the cluster to another minor version under our feet
	apt-mark hold cri-o kubelet kubeadm kubectl
}

done_crio() { systemctl is-active --quiet crio; }
run_crio() {
	systemctl enable --now crio
}

# the kubelet restarts in a loop until kubeadm gives it a configuration: that is expected
done_kubelet() { grep -qs -- "--node-ip=$IP" "$R/etc/default/kubelet" && systemctl is-enabled --quiet kubelet; }
run_kubelet() {
	# without it the kubelet may pick another address than the one the cluster talks on
	echo "KUBELET_EXTRA_ARGS=--node-ip=$IP" >"$R/etc/default/kubelet"
	systemctl enable kubelet
}

# --- end of the shared part ---------------------------------------------------------------------

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
