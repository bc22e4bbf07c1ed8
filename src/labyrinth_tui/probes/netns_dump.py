"""The node-side dump of every pod netns in ONE python3 process: links, addresses, routes as `ip -j` gives.

Discovery used to run one `nsenter … ip` per pod netns: a process (fork, exec, ld.so, netlink socket)
per pod, ~5 ms each. This script (`python3 -c`, which the node already needs for canaries) opens each
named netns the node is linked to, enters it with setns(2) and asks rtnetlink for its links, addresses
and routes itself. It prints exactly what the shell loop printed — per netns `<marker> netns NAME`, a
section `ip` holding `ip -j -d addr show` and `ip -j route show` shaped JSON — so one parser reads both.

All output is written at the end, in one go: a script that cannot run (no python3, too old, not
allowed to setns) exits non-zero having printed nothing, and the shell falls back to the loop.
Which netns: the names in /run/netns (and /var/run/netns when it is another folder) that have an id in
the node's netns (RTM_GETNSID), i.e. those a veth of the node leads to — what `ip netns list` marks
`(id: N)`. A netns only reachable through /proc/PID/ns/net has no name and is left out, as before.
"""

from __future__ import annotations

NETNS_DUMP_SCRIPT = r"""
import ctypes, json, os, re, socket, struct, sys
marker = sys.argv[1]
NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}")
CLONE_NEWNET = 0x40000000
setns = getattr(os, "setns", None)
if setns is None:
    libc = ctypes.CDLL(None, use_errno=True)
    def setns(fd, kind):
        if libc.setns(fd, kind) != 0:
            raise OSError(ctypes.get_errno(), "setns")
seq = [0]
def request(sock, kind, flags, body):
    seq[0] += 1
    sock.send(struct.pack("=IHHII", 16 + len(body), kind, flags, seq[0], 0) + body)
    out = []
    while True:
        data = sock.recv(1 << 20)
        at = 0
        while at + 16 <= len(data):
            size, mtype, _, _, _ = struct.unpack_from("=IHHII", data, at)
            if size < 16:
                return out
            if mtype == 3:
                return out
            if mtype == 2:
                err = struct.unpack_from("=i", data, at + 16)[0]
                if err:
                    raise OSError(-err, "netlink")
                return out
            out.append((mtype, data[at + 16 : at + size]))
            at += (size + 3) & ~3
        if not flags & 0x300:
            return out
def attrs(data, at=0):
    found = {}
    while at + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, at)
        if size < 4:
            break
        found[kind & 0x3FFF] = data[at + 4 : at + size]
        at += (size + 3) & ~3
    return found
def dump(sock, kind, body):
    return request(sock, kind, 0x301, body)
def text(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
def u32(raw):
    return struct.unpack_from("=I", raw)[0]
def ip(family, raw):
    return socket.inet_ntop(family, raw)
STATES = ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"]
SCOPES = {253: "link", 254: "host", 200: "site"}
def links_and_routes():
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        links, names = [], {}
        for _, msg in dump(sock, 18, struct.pack("=BxHiII", 0, 0, 0, 0, 0)):
            _, ltype, index, _, _ = struct.unpack_from("=BxHiII", msg)
            a = attrs(msg, 16)
            if 3 not in a:
                continue
            link = {"ifindex": index, "ifname": text(a[3])}
            names[index] = link["ifname"]
            if 4 in a:
                link["mtu"] = u32(a[4])
            if 10 in a:
                link["master"] = u32(a[10])
            if 16 in a:
                link["operstate"] = STATES[a[16][0]] if a[16][0] < len(STATES) else "UNKNOWN"
            link["link_type"] = {772: "loopback", 1: "ether"}.get(ltype, str(ltype))
            if 1 in a:
                link["address"] = ":".join("%02x" % b for b in a[1])
            if 5 in a:
                peer = u32(a[5])
                if 37 in a:
                    link["link_index"] = peer
                    link["link_netnsid"] = struct.unpack_from("=i", a[37])[0]
                elif peer != index:
                    link["link"] = peer
            if 18 in a:
                info = attrs(a[18])
                linkinfo = {}
                if 1 in info:
                    linkinfo["info_kind"] = text(info[1])
                if linkinfo.get("info_kind") == "vxlan" and 2 in info:
                    data = attrs(info[2])
                    vx = {}
                    if 1 in data:
                        vx["id"] = u32(data[1])
                    if 15 in data:
                        vx["port"] = struct.unpack(">H", data[15][:2])[0]
                    if 4 in data:
                        vx["local"] = ip(socket.AF_INET, data[4])
                    linkinfo["info_data"] = vx
                link["linkinfo"] = linkinfo
            link["addr_info"] = []
            links.append(link)
        for link in links:
            if isinstance(link.get("master"), int):
                link["master"] = names.get(link["master"], str(link["master"]))
            if isinstance(link.get("link"), int):
                link["link"] = names.get(link["link"], "if%d" % link["link"])
        by_index = {link["ifindex"]: link for link in links}
        for _, msg in dump(sock, 22, struct.pack("=BBBBI", 0, 0, 0, 0, 0)):
            family, prefixlen, _, scope, index = struct.unpack_from("=BBBBI", msg)
            a = attrs(msg, 8)
            raw = a.get(2) or a.get(1)
            if raw is None or index not in by_index or family not in (socket.AF_INET, socket.AF_INET6):
                continue
            entry = {"family": "inet" if family == socket.AF_INET else "inet6", "local": ip(family, raw)}
            entry["prefixlen"] = prefixlen
            entry["scope"] = SCOPES.get(scope, "global")
            by_index[index]["addr_info"].append(entry)
        routes = []
        for _, msg in dump(sock, 26, struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)):
            family, dst_len, _, _, table, _, scope, rtype, _ = struct.unpack_from("=BBBBBBBBI", msg)
            a = attrs(msg, 12)
            if 15 in a:
                table = u32(a[15])
            if table != 254 or rtype != 1:
                continue
            if 1 in a:
                dst = ip(family, a[1]) + ("" if dst_len == 32 else "/%d" % dst_len)
            else:
                dst = "default" if dst_len == 0 else "0.0.0.0/%d" % dst_len
            route = {"dst": dst}
            if 5 in a:
                route["gateway"] = ip(family, a[5])
            if 4 in a:
                route["dev"] = names.get(u32(a[4]), "if%d" % u32(a[4]))
            route["scope"] = SCOPES.get(scope, "global" if scope == 0 else str(scope))
            if 7 in a:
                route["prefsrc"] = ip(family, a[7])
            if 8 in a:
                metrics = attrs(a[8])
                if 2 in metrics:
                    route["metrics"] = [{"mtu": u32(metrics[2])}]
            routes.append(route)
        return links, routes
    finally:
        sock.close()
def nsid(sock, fd):
    for _, msg in request(sock, 90, 1, struct.pack("=B3x", 0) + struct.pack("=HHI", 8, 3, fd)):
        a = attrs(msg, 4)
        if 1 in a:
            return struct.unpack_from("=i", a[1])[0]
    return -1
folders = []
for folder in ("/run/netns", "/var/run/netns"):
    if os.path.isdir(folder) and all(not os.path.samefile(folder, f) for f in folders):
        folders.append(folder)
home = os.open("/proc/self/ns/net", os.O_RDONLY)
control = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
linked = []
for folder in folders:
    for name in sorted(os.listdir(folder)):
        if not NAME.fullmatch(name) or any(name == n for n, _ in linked):
            continue
        try:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
        except OSError:
            continue
        if nsid(control, fd) >= 0:
            linked.append((name, fd))
        else:
            os.close(fd)
control.close()
out = []
entered = False
for name, fd in linked:
    out.append("%s netns %s" % (marker, name))
    out.append("%s begin ip" % marker)
    try:
        setns(fd, CLONE_NEWNET)
        entered = True
        links, routes = links_and_routes()
        out.append(json.dumps(links))
        out.append(json.dumps(routes))
        status = 0
    except OSError as exc:
        if not entered:
            sys.exit(1)
        sys.stderr.write("netns %s: %s\n" % (name, exc))
        status = 1
    finally:
        os.close(fd)
    out.append("")
    out.append("%s end ip %d" % (marker, status))
setns(home, CLONE_NEWNET)
out.append("%s netns-done" % marker)
sys.stdout.write("\n".join(out) + "\n")
"""
