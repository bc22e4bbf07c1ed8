"""How many cases each property test of a reader of untrusted input runs."""

from __future__ import annotations

import os

# 10k in CI (which sets CI=true), 1k on a developer's machine; LAB_FUZZ_EXAMPLES sets it either way
FUZZ_EXAMPLES = int(os.environ.get("LAB_FUZZ_EXAMPLES") or (10_000 if os.environ.get("CI") else 1_000))
