"""The Kubernetes API through the kubernetes client: nodes, pods, services, exec, the article's workloads."""
