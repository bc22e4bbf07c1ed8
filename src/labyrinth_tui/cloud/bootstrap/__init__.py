"""Kubernetes + Cilium on VMs over SSH: inventories, the node scripts, their phases, masking of secrets."""
