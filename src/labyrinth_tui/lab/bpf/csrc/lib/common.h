/* The lab's eBPF datapath: maps shared by every program of a node, and the service translation.
 *
 * Every node loads its own copy; the maps are pinned by name in the lab's bpffs, so the programs of
 * bpf_lxc.c, bpf_overlay.c and bpf_host.c on one node share one service table, one conntrack table
 * and one counter table. The layouts below are mirrored in labyrinth_tui/lab/bpf/maps.py.
 */
#ifndef LABYRINTH_COMMON_H
#define LABYRINTH_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SERVICES 4096
#define MAX_BACKENDS 65536
#define CT_ENTRIES 16384
#define COUNTER_ENTRIES 4096

/* which program counted a packet: the key of cil_counters is (ifindex, hook) */
enum hook {
	HOOK_FROM_CONTAINER = 1,
	HOOK_FROM_OVERLAY = 2,
	HOOK_TO_OVERLAY = 3,
	HOOK_FROM_HOST = 4,
	HOOK_TO_HOST = 5,
	HOOK_FROM_NETDEV = 6,
};

/* ClusterIP:port/proto; slot 0 holds the number of backends, slots 1..count a backend id each */
struct lb4_key {
	__be32 address;
	__be16 dport;
	__u16 backend_slot;
	__u8 proto;
	__u8 pad[3];
};

struct lb4_service {
	__u32 backend_id;
	__u16 count;
	__u16 rev_nat_index;
};

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

/* a translated flow, keyed as its replies look: backend → client */
struct ct4_key {
	__be32 backend;
	__be32 client;
	__be16 backend_port;
	__be16 client_port;
	__u8 proto;
	__u8 pad[3];
};

struct ct4_entry {
	__be32 vip;
	__be16 vip_port;
	__u16 rev_nat_index;
};

struct counter_key {
	__u32 ifindex;
	__u32 hook;
};

struct counter {
	__u64 seen;
	__u64 translated;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* filled once at lab up: no need to pay for all entries */
	__uint(max_entries, MAX_SERVICES * 8);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
} lb4_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* filled once at lab up: no need to pay for all entries */
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct lb4_backend);
} lb4_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_ENTRIES);
	__type(key, struct ct4_key);
	__type(value, struct ct4_entry);
} ct4_global SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* filled once at lab up: no need to pay for all entries */
	__uint(max_entries, COUNTER_ENTRIES);
	__type(key, struct counter_key);
	__type(value, struct counter);
} cil_counters SEC(".maps");

#define ETH_OFF_IP ETH_HLEN
#define IP_CSUM_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, check))
#define IP_SRC_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, saddr))
#define IP_DST_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, daddr))

struct flow4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u32 l4_off;
};

static __always_inline void count(struct __sk_buff *skb, __u32 hook, int translated)
{
	struct counter_key key = { .ifindex = skb->ifindex, .hook = hook };
	struct counter *c = bpf_map_lookup_elem(&cil_counters, &key);

	if (!c) {
		struct counter init = { .seen = 1, .translated = translated ? 1 : 0 };

		/* a concurrent first packet may have won: then add to its entry */
		if (bpf_map_update_elem(&cil_counters, &key, &init, BPF_NOEXIST) == 0)
			return;
		c = bpf_map_lookup_elem(&cil_counters, &key);
		if (!c)
			return;
	}
	__sync_fetch_and_add(&c->seen, 1);
	if (translated)
		__sync_fetch_and_add(&c->translated, 1);
}

/* IPv4 TCP/UDP behind an Ethernet header, not a fragment: fills flow and returns 0 */
static __always_inline int parse_flow4(struct __sk_buff *skb, struct flow4 *flow)
{
	struct iphdr ip;
	__be16 ports[2];

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return -1;
	if (bpf_skb_load_bytes(skb, ETH_OFF_IP, &ip, sizeof(ip)) < 0)
		return -1;
	if (ip.version != 4 || ip.ihl < 5)
		return -1;
	if (ip.frag_off & bpf_htons(0x3fff)) /* MF or an offset: no ports here */
		return -1;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return -1;
	flow->l4_off = ETH_OFF_IP + ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, flow->l4_off, ports, sizeof(ports)) < 0)
		return -1;
	flow->saddr = ip.saddr;
	flow->daddr = ip.daddr;
	flow->sport = ports[0];
	flow->dport = ports[1];
	flow->proto = ip.protocol;
	return 0;
}

static __always_inline __u32 l4_csum_off(const struct flow4 *flow)
{
	/* struct tcphdr's check is at 16, struct udphdr's at 6 */
	return flow->l4_off + (flow->proto == IPPROTO_TCP ? 16 : 6);
}

/* rewrite one address and one port of the packet, keeping the IP and TCP/UDP checksums right */
static __always_inline int rewrite4(struct __sk_buff *skb, const struct flow4 *flow, int dst,
				    __be32 new_addr, __be16 new_port)
{
	__be32 old_addr = dst ? flow->daddr : flow->saddr;
	__be16 old_port = dst ? flow->dport : flow->sport;
	__u32 addr_off = dst ? IP_DST_OFF : IP_SRC_OFF;
	__u32 port_off = flow->l4_off + (dst ? 2 : 0);
	__u32 csum_off = l4_csum_off(flow);
	__u64 flags = flow->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u16 udp_csum = 1;

	if (flow->proto == IPPROTO_UDP && bpf_skb_load_bytes(skb, csum_off, &udp_csum, 2) < 0)
		return -1;
	/* a UDP checksum of 0 means "none": leave it so */
	if (udp_csum != 0) {
		if (bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, flags | BPF_F_PSEUDO_HDR | 4) < 0)
			return -1;
		if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, flags | 2) < 0)
			return -1;
	}
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, 4) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, addr_off, &new_addr, 4, 0) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, port_off, &new_port, 2, 0) < 0)
		return -1;
	return 0;
}

static __always_inline __u32 flow_hash(const struct flow4 *flow)
{
	/* murmur3's finaliser over the 5-tuple: the same flow always picks the same backend */
	__u32 h = flow->saddr ^ (flow->daddr * 0x9e3779b1u);

	h ^= ((__u32)flow->sport << 16 | flow->dport) * 0x85ebca6bu;
	h ^= flow->proto;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* a reply of a translated flow: give it the ClusterIP back as its source. 1 if it did */
static __always_inline int lb4_rev_nat(struct __sk_buff *skb, const struct flow4 *flow)
{
	struct ct4_key key = {
		.backend = flow->saddr,
		.client = flow->daddr,
		.backend_port = flow->sport,
		.client_port = flow->dport,
		.proto = flow->proto,
	};
	struct ct4_entry *entry = bpf_map_lookup_elem(&ct4_global, &key);

	if (!entry)
		return 0;
	return rewrite4(skb, flow, 0, entry->vip, entry->vip_port) == 0;
}

/* a packet to a ClusterIP:port: send it to one backend, chosen by flow hash. 1 if it did */
static __always_inline int lb4_xlate(struct __sk_buff *skb, const struct flow4 *flow)
{
	struct lb4_key key = { .address = flow->daddr, .dport = flow->dport, .proto = flow->proto };
	struct lb4_service *svc = bpf_map_lookup_elem(&lb4_services, &key);
	struct lb4_service *slot;
	struct lb4_backend *backend;
	struct ct4_key ct = {};
	struct ct4_entry entry = {};
	struct ct4_entry *known;

	if (!svc || svc->count == 0)
		return 0;
	entry.rev_nat_index = svc->rev_nat_index;
	key.backend_slot = (flow_hash(flow) % svc->count) + 1;
	slot = bpf_map_lookup_elem(&lb4_services, &key);
	if (!slot)
		return 0;
	backend = bpf_map_lookup_elem(&lb4_backends, &slot->backend_id);
	if (!backend)
		return 0;
	ct.backend = backend->address;
	ct.client = flow->saddr;
	ct.backend_port = backend->port;
	ct.client_port = flow->sport;
	ct.proto = flow->proto;
	entry.vip = flow->daddr;
	entry.vip_port = flow->dport;
	/* written once per flow, not per packet: an LRU update takes a lock and a free node and frees
	 * the old one, a lookup does neither (and refreshes the entry's place in the LRU all the same) */
	known = bpf_map_lookup_elem(&ct4_global, &ct);
	if (!known || known->vip != entry.vip || known->vip_port != entry.vip_port ||
	    known->rev_nat_index != entry.rev_nat_index) {
		if (bpf_map_update_elem(&ct4_global, &ct, &entry, BPF_ANY) < 0)
			return 0;
	}
	return rewrite4(skb, flow, 1, backend->address, backend->port) == 0;
}

#endif
