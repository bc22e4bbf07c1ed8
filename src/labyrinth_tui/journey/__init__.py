"""The journey: one packet stitched across hops and nodes (pure logic: no I/O, no textual)."""
