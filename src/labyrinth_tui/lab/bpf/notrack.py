"""Cilium's "NOTRACK for pod traffic" raw-table rules, for the eBPF datapath: its own conntrack map
tracks the service flows, so netfilter's conntrack need not track pod ↔ pod packets a second time.

Cilium writes them with `--install-no-conntrack-iptables-rules`: chains CILIUM_PRE_raw and
CILIUM_OUTPUT_raw fed from raw PREROUTING and OUTPUT, a rule for `-s <pods>` and one for `-d <pods>`,
each `-j CT --notrack` with the comment "cilium: NOTRACK for pod traffic". Pod traffic to a ClusterIP
is already addressed to a pod when netfilter first sees it (tc ingress on the lxc runs before
PREROUTING), so kube-proxy's nat rules, which need conntrack, had none of it to count anyway; the VXLAN
packets between nodes (node address to node address) stay tracked. A node reaches no ClusterIP in the
lab (`ip -n <prefix>.node-1 route get 10.105.134.33`: Network is unreachable), so no kube-proxy DNAT
of a node's own traffic loses its way back. `iptables-save -c -t raw` in a node's netns shows them.
"""

from __future__ import annotations

from labyrinth_tui.lab.spec import LabSpec

COMMENT = "cilium: NOTRACK for pod traffic"


def raw_rules(spec: LabSpec) -> str:
    """`iptables-restore --noflush` input for a node's raw table (the same on every node)."""
    pods = spec.cluster_cidr
    lines = [
        "*raw",
        ":CILIUM_PRE_raw - [0:0]",
        ":CILIUM_OUTPUT_raw - [0:0]",
        '-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_raw" -j CILIUM_PRE_raw',
        '-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT_raw" -j CILIUM_OUTPUT_raw',
        *(
            f'-A {chain} -{side} {pods} -m comment --comment "{COMMENT}" -j CT --notrack'
            for chain in ("CILIUM_PRE_raw", "CILIUM_OUTPUT_raw")
            for side in "sd"
        ),
        "COMMIT",
        "",
    ]
    return "\n".join(lines)
