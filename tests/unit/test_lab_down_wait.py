"""lab down waits for the kernel to free the lab's BPF objects while its cleanup progresses, no longer."""

from __future__ import annotations

import time

from labyrinth_tui.lab.bpf.datapath import wait_freed

OBJECTS = [("link", 1), ("link", 2), ("map", 3)]


class Kernel:
    """Frees nothing for `quiet` s while it frees a namespace every 0.1 s, then the objects; or stalls."""

    def __init__(self, quiet: float, namespaces: int, stuck: bool = False) -> None:
        self.start, self.quiet, self.namespaces, self.stuck = time.monotonic(), quiet, namespaces, stuck

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def held(self) -> int:
        return self.namespaces if self.stuck else max(0, self.namespaces - int(self.elapsed() / 0.1))

    def exists(self, kind: str, ident: int) -> bool:
        return self.stuck or self.elapsed() < self.quiet


def test_objects_freed_after_a_long_namespace_cleanup_are_waited_for() -> None:
    kernel = Kernel(quiet=0.6, namespaces=50)  # namespaces go all along; the objects after 0.6 s
    assert wait_freed(list(OBJECTS), 0.3, kernel.exists, kernel.held) == []
    assert kernel.elapsed() >= 0.6  # twice the timeout: the namespaces kept it waiting


def test_a_kernel_that_frees_nothing_is_reported_after_the_timeout() -> None:
    kernel = Kernel(quiet=0.0, namespaces=50, stuck=True)
    assert wait_freed(list(OBJECTS), 0.3, kernel.exists, kernel.held) == OBJECTS
    assert kernel.elapsed() >= 0.3


def test_without_a_namespace_count_only_the_objects_count_as_progress() -> None:
    kernel = Kernel(quiet=0.6, namespaces=50)
    assert wait_freed(list(OBJECTS), 0.3, kernel.exists, lambda: None) == OBJECTS  # as before: 0.3 s
