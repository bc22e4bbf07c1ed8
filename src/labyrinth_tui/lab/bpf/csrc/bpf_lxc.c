/* bpf_lxc: on the host side of every endpoint's veth (each pod's lxc…, and lxc_health), tc ingress —
 * the packets the pod sends. A packet to a ClusterIP:port leaves here addressed to a backend pod;
 * a reply from a local backend gets the ClusterIP back as its source. */
#include "lib/common.h"

SEC("tc")
int cil_from_container(struct __sk_buff *skb)
{
	struct flow4 flow;
	int translated = 0;

	if (parse_flow4(skb, &flow) == 0) {
		translated = lb4_rev_nat(skb, &flow);
		if (!translated)
			translated = lb4_xlate(skb, &flow);
	}
	count(skb, HOOK_FROM_CONTAINER, translated);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
