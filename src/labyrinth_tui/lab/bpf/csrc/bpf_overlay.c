/* bpf_overlay: cilium_vxlan. Ingress sees the decapsulated packet from another node: a reply from a
 * remote backend gets its ClusterIP source back here, so the client's lxc… shows the ClusterIP. */
#include "lib/common.h"

SEC("tc")
int cil_from_overlay(struct __sk_buff *skb)
{
	struct flow4 flow;
	int translated = 0;

	if (parse_flow4(skb, &flow) == 0)
		translated = lb4_rev_nat(skb, &flow);
	count(skb, HOOK_FROM_OVERLAY, translated);
	return TC_ACT_OK;
}

/* egress: the packet is already addressed to the backend pod; the vxlan device encapsulates it */
SEC("tc")
int cil_to_overlay(struct __sk_buff *skb)
{
	count(skb, HOOK_TO_OVERLAY, 0);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
