# node-lib.sh: what node-ctl.sh and node-wrk.sh share — parameters common to both, their checks, the
# phase runner and the phases of a Kubernetes node before kubeadm (hostname, kernel, repos, packages,
# cri-o, kubelet). Sourced, never run: bootstrap uploads it beside the two scripts.
# shellcheck shell=bash
# shellcheck disable=SC2154  # IP, NODE_NAME and R are set by the sourcing script before it sources this

K8S_VERSION="${K8S_VERSION:-1.33}"
CRIO_VERSION="${CRIO_VERSION:-$K8S_VERSION}"
# where the packages come from: the community repositories, unless a mirror is given
K8S_REPO="${K8S_REPO:-https://pkgs.k8s.io/core:/stable:/v$K8S_VERSION/deb/}"
CRIO_REPO="${CRIO_REPO:-https://pkgs.k8s.io/addons:/cri-o:/stable:/v$CRIO_VERSION/deb/}"
export DEBIAN_FRONTEND=noninteractive
# a fresh cloud VM runs unattended-upgrades at boot: wait for its dpkg lock instead of failing
APT=(apt-get -y -q -o DPkg::Lock::Timeout=600)
PHASE=""

# die REASON: one line naming the script (node-ctl.sh or node-wrk.sh) and why; exit 2
die() {
	echo "${0##*/}: $*"
	exit 2
}

check_common_parameters() {
	[[ $IP =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "IP=$IP is not an IPv4 address"
	[[ $NODE_NAME =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "NODE_NAME=$NODE_NAME is not a short lowercase hostname"
	[[ $K8S_VERSION =~ ^1\.[0-9]+$ ]] || die "K8S_VERSION=$K8S_VERSION: give a minor version like 1.33"
	[[ $CRIO_VERSION =~ ^1\.[0-9]+$ ]] || die "CRIO_VERSION=$CRIO_VERSION: give a minor version like 1.33"
	[[ $K8S_REPO =~ ^https://[A-Za-z0-9./:_~-]+/$ ]] || die "K8S_REPO=$K8S_REPO: give an https:// URL ending in /"
	[[ $CRIO_REPO =~ ^https://[A-Za-z0-9./:_~-]+/$ ]] || die "CRIO_REPO=$CRIO_REPO: give an https:// URL ending in /"
}

check_root() {
	[ "$(id -u)" -eq 0 ] || die "run as root (sudo -i, as in the article)"
}

# says which phase failed (the EXIT trap of both scripts calls it first)
report_failed_phase() {
	local rc="$1"
	if [ "$rc" -ne 0 ] && [ -n "$PHASE" ]; then
		echo "::fail $PHASE $rc"
	fi
}

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

# --- the phases of every node -------------------------------------------------------------------

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
