"""What to ask a node, and what its answers mean: pure parsers; I/O goes through a session passed in."""
