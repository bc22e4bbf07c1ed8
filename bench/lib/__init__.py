"""Helpers the bench scripts share (goal verdicts, the tcx attach floor); not benches themselves."""
