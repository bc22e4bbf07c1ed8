/* bpf_host: the host's devices. As in Cilium, cilium_host runs cil_to_host on ingress (towards the
 * node's stack) and cil_from_host on egress, cilium_net runs cil_to_host on ingress, and the node's
 * network device ens4 runs cil_from_netdev on ingress. They count what crosses them. */
#include "lib/common.h"

SEC("tc")
int cil_from_host(struct __sk_buff *skb)
{
	count(skb, HOOK_FROM_HOST, 0);
	return TC_ACT_OK;
}

SEC("tc")
int cil_to_host(struct __sk_buff *skb)
{
	count(skb, HOOK_TO_HOST, 0);
	return TC_ACT_OK;
}

SEC("tc")
int cil_from_netdev(struct __sk_buff *skb)
{
	count(skb, HOOK_FROM_NETDEV, 0);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
