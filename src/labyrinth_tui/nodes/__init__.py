"""Reaching a node: connectors, sessions and the one module that builds shell command lines.

Kept free of imports so `probes/` can import the pure modules (commands, errors, runner) without
pulling asyncssh in through this package.
"""
