"""The lab's eBPF datapath: Cilium-named tc programs, compiled once, loaded through libbpf, pinned per lab."""
