"""The labyrinth on this machine: the article's cluster built from network namespaces."""
