"""Google Compute Engine: the article's three VMs, network and firewall — plan, up, status, down."""
