"""The article's cluster, defined once: nodes, pods, host veths, services and VNI as the lab recorded them.

Every value is the shipped recording's (src/labyrinth_tui/assets/bundles/article/topology.json); to see them:
    python3 -c "import json; t = json.load(open('src/labyrinth_tui/assets/bundles/article/topology.json'));
    print([(n['name'], n['address'], [(p['name'], p['ip'], p['netns'], p['host_veth']) for p in n['pods']])
    for n in t['nodes']], t['services'])"
The synthetic journey (journey_article), its report (article_journey) and the small bundle (article_bundle)
all build from these, so a name on one screen is the name on every other.
"""

from __future__ import annotations

from labyrinth_tui.model.topology import Pod, Service, ServicePort

CLUSTER = "lab labyrinth"
NODE0, NODE1, NODE2 = "node-0", "node-1", "node-2"
NODE0_IP, NODE1_IP, NODE2_IP = "10.168.0.2", "10.168.0.4", "10.168.0.5"

# each worker's cilium_host address: the pods' default gateway
NODE1_GATEWAY, NODE2_GATEWAY = "10.0.1.49", "10.0.2.244"

CLIENT_VETH, SERVER_VETH = "lxc1ba60d50596c", "lxc91a2bea4a8f8"
HOST_VETH_IFINDEX = 6  # the first lxc made on a node follows lo, ens4, cilium_net, cilium_host, cilium_vxlan
CLIENT, SERVER, DNS_POD = "10.0.1.15", "10.0.2.215", "10.0.2.17"

CLIENT_POD = Pod(
    "wrk-1",
    "node-wrk-1-ubuntu24-684f7d8fd6-2zncq",
    CLIENT,
    "labyrinth.ed03b97d-dfb3-593f-bdbf-50531f9ea048",
    CLIENT_VETH,
    HOST_VETH_IFINDEX,
    2,
    NODE1_GATEWAY,
)
SERVER_POD = Pod(
    "wrk-2",
    "node-wrk-2-ubuntu24-85748464f7-mwmrt",
    SERVER,
    "labyrinth.d6138ce2-fd6e-5dda-9358-d840d1cfa1ac",
    SERVER_VETH,
    HOST_VETH_IFINDEX,
    2,
    NODE2_GATEWAY,
)

CLUSTER_IP, KUBE_DNS = "10.105.134.33", "10.96.0.10"
SERVICE_PORT = 9999
SERVICE_NAME = "node-wrk-2-ubuntu24.wrk-2"  # the name the client dials: <service>.<namespace>
SERVICES = (
    Service(
        "wrk-2",
        "node-wrk-2-ubuntu24",
        CLUSTER_IP,
        (
            ServicePort("tcp-9999", "TCP", SERVICE_PORT, SERVICE_PORT),
            ServicePort("udp-9999", "UDP", SERVICE_PORT, SERVICE_PORT),
        ),
        (SERVER,),
    ),
    Service("kube-system", "kube-dns", KUBE_DNS, (ServicePort("dns", "UDP", 53, 53),), (DNS_POD,)),
)

# the lab's cilium_vxlan devices all carry VNI 2 on UDP 8472, and every encapsulated packet shows it
VNI = 2
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
