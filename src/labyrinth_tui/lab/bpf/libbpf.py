"""A ctypes binding to the system's libbpf (Debian's libbpf1): only the calls the lab's datapath makes.

libbpf ≥ 1.0 returns NULL / a negative errno on failure (no more libbpf_get_error), which every
wrapper here turns into a `BpfError` carrying the call, the errno text and, for a failed load, the
tail of the verifier's log that libbpf printed through its print callback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from typing import Any

# enum bpf_attach_type (include/uapi/linux/bpf.h, kernel ≥ 6.6): tcx came after Debian's libbpf 1.1
BPF_TCX_INGRESS = 46
BPF_TCX_EGRESS = 47
BPF_TC_INGRESS = 1  # enum bpf_tc_attach_point (classic clsact)
BPF_TC_EGRESS = 2
BPF_TC_F_REPLACE = 1
BPF_ANY = 0
LOG_TAIL_LINES = 12


class BpfError(OSError):
    """A libbpf call failed; `str()` is one line for a person (plus the verifier's tail when relevant)."""

    def __str__(self) -> str:
        return str(self.strerror)


class BpfUnavailable(BpfError):
    """libbpf itself cannot be found or loaded on this machine."""


class TestRunOpts(ctypes.Structure):
    """struct bpf_test_run_opts (libbpf 1.1)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class TcHook(ctypes.Structure):
    """struct bpf_tc_hook."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),
        ("parent", ctypes.c_uint32),
    ]


class TcOpts(ctypes.Structure):
    """struct bpf_tc_opts."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
    ]


_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_log = threading.local()
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]


def _print(level: int, fmt: bytes, args: int) -> int:
    # libbpf prints the verifier's log through here when a load fails; keep it for the error message
    buf = ctypes.create_string_buffer(4096)
    _libc.vsnprintf(buf, len(buf), fmt, args)
    lines: list[str] | None = getattr(_log, "lines", None)
    if lines is not None:
        lines.extend(buf.value.decode(errors="replace").splitlines())
    return 0


_print_callback = _PRINT_FN(_print)  # kept referenced: libbpf holds the pointer for the process's life

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "bpf_object__open_file": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]),
    "bpf_object__load": (ctypes.c_int, [ctypes.c_void_p]),
    "bpf_object__close": (None, [ctypes.c_void_p]),
    "bpf_object__next_map": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
    "bpf_object__find_program_by_name": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
    "bpf_object__find_map_fd_by_name": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
    "bpf_map__name": (ctypes.c_char_p, [ctypes.c_void_p]),
    "bpf_map__set_pin_path": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
    "bpf_program__fd": (ctypes.c_int, [ctypes.c_void_p]),
    "bpf_link_create": (ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]),
    "bpf_obj_pin": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p]),
    "bpf_obj_get": (ctypes.c_int, [ctypes.c_char_p]),
    "bpf_obj_get_info_by_fd": (
        ctypes.c_int,
        [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)],
    ),
    "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]),
    "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]),
    "bpf_map_get_next_key": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]),
    "bpf_map_get_fd_by_id": (ctypes.c_int, [ctypes.c_uint32]),
    "bpf_prog_get_fd_by_id": (ctypes.c_int, [ctypes.c_uint32]),
    "bpf_link_get_fd_by_id": (ctypes.c_int, [ctypes.c_uint32]),
    "bpf_prog_test_run_opts": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(TestRunOpts)]),
    "bpf_tc_hook_create": (ctypes.c_int, [ctypes.POINTER(TcHook)]),
    "bpf_tc_attach": (ctypes.c_int, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)]),
    "bpf_tc_query": (ctypes.c_int, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)]),
    "libbpf_set_print": (ctypes.c_void_p, [_PRINT_FN]),
}


def library_path() -> str | None:
    """Where libbpf.so.1 is, or None (what `labyrinth doctor` reports)."""
    return ctypes.util.find_library("bpf")


def lib() -> ctypes.CDLL:
    global _lib
    with _lock:
        if _lib is None:
            path = library_path()
            if path is None:
                raise BpfUnavailable(
                    0, "libbpf is not installed (apt-get install -y libbpf1, or: make setup)"
                )
            loaded = ctypes.CDLL(path, use_errno=True)
            for name, (restype, argtypes) in _SIGNATURES.items():
                func = getattr(loaded, name)
                func.restype, func.argtypes = restype, argtypes
            loaded.libbpf_set_print(_print_callback)
            _lib = loaded
        return _lib


def _fail(call: str, code: int, detail: str = "") -> BpfError:
    errno = abs(code) if code else ctypes.get_errno()
    return BpfError(errno, f"{call}: {os.strerror(errno)}{detail}")


def check(call: str, rc: int) -> int:
    if rc < 0:
        raise _fail(call, rc)
    return rc


def verifier_tail(lines: list[str]) -> str:
    """The last lines of the verifier's log libbpf printed (between its BEGIN/END markers)."""
    start = max((i for i, ln in enumerate(lines) if "BEGIN PROG LOAD LOG" in ln), default=-1)
    end = next((i for i, ln in enumerate(lines) if i > start and "END PROG LOAD LOG" in ln), len(lines))
    body = [ln for ln in lines[start + 1 : end] if ln.strip()] if start >= 0 else lines
    return "\n".join(body[-LOG_TAIL_LINES:])


class BpfObject:
    """One compiled object file, opened and loaded; its maps pinned under `pin_dir` (reused if there)."""

    def __init__(self, path: str, pin_dir: str | None = None) -> None:
        self.lib = lib()
        self.ptr = self.lib.bpf_object__open_file(path.encode(), None)
        if not self.ptr:
            raise _fail(f"open {path}", 0)
        if pin_dir is not None:
            for name, map_ptr in self._maps():
                if not name.startswith("."):  # .rodata/.bss stay private to the object
                    check("pin path", self.lib.bpf_map__set_pin_path(map_ptr, f"{pin_dir}/{name}".encode()))
        _log.lines = []
        try:
            rc = self.lib.bpf_object__load(self.ptr)
            if rc < 0:
                tail = verifier_tail(_log.lines)
                self.close()
                raise _fail(f"load {os.path.basename(path)}", rc, f"\n{tail}" if tail else "")
        finally:
            _log.lines = None

    def _maps(self) -> Iterator[tuple[str, int]]:
        map_ptr = self.lib.bpf_object__next_map(self.ptr, None)
        while map_ptr:
            yield self.lib.bpf_map__name(map_ptr).decode(), map_ptr
            map_ptr = self.lib.bpf_object__next_map(self.ptr, map_ptr)

    def prog_fd(self, name: str) -> int:
        prog = self.lib.bpf_object__find_program_by_name(self.ptr, name.encode())
        if not prog:
            raise BpfError(2, f"no program {name} in the object")
        return check(f"fd of {name}", self.lib.bpf_program__fd(prog))

    def map_fd(self, name: str) -> int:
        return check(f"map {name}", self.lib.bpf_object__find_map_fd_by_name(self.ptr, name.encode()))

    def close(self) -> None:
        if self.ptr:
            self.lib.bpf_object__close(self.ptr)
            self.ptr = None

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def link_create(prog_fd: int, ifindex: int, attach_type: int) -> int:
    """A tcx link in the calling thread's network namespace; returns its fd."""
    return check("bpf_link_create", lib().bpf_link_create(prog_fd, ifindex, attach_type, None))


def tc_attach(prog_fd: int, ifindex: int, ingress: bool) -> int:
    """A classic clsact filter (kernels without tcx); returns the program id the kernel reports."""
    point = BPF_TC_INGRESS if ingress else BPF_TC_EGRESS
    hook = TcHook(ctypes.sizeof(TcHook), ifindex, point, 0)
    rc = lib().bpf_tc_hook_create(ctypes.byref(hook))
    if rc < 0 and -rc != 17:  # EEXIST: the other direction made the clsact qdisc already
        raise _fail("bpf_tc_hook_create", rc)
    opts = TcOpts(ctypes.sizeof(TcOpts), prog_fd, BPF_TC_F_REPLACE, 0, 1, 1)
    check("bpf_tc_attach", lib().bpf_tc_attach(ctypes.byref(hook), ctypes.byref(opts)))
    return int(opts.prog_id)


def tc_query(ifindex: int, ingress: bool) -> int | None:
    """The program id of the lab's clsact filter (handle 1, priority 1) on a device, or None."""
    point = BPF_TC_INGRESS if ingress else BPF_TC_EGRESS
    hook = TcHook(ctypes.sizeof(TcHook), ifindex, point, 0)
    opts = TcOpts(ctypes.sizeof(TcOpts), 0, 0, 0, 1, 1)
    if lib().bpf_tc_query(ctypes.byref(hook), ctypes.byref(opts)) < 0:
        return None
    return int(opts.prog_id)


def obj_pin(fd: int, path: str) -> None:
    check(f"pin {path}", lib().bpf_obj_pin(fd, path.encode()))


def obj_get(path: str) -> int:
    return check(f"open pinned {path}", lib().bpf_obj_get(path.encode()))


def obj_info(fd: int, size: int = 256) -> bytes:
    """struct bpf_{prog,map,link}_info of an fd, as raw bytes (the caller knows the layout)."""
    buf = ctypes.create_string_buffer(size)
    length = ctypes.c_uint32(size)
    check("bpf_obj_get_info_by_fd", lib().bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(length)))
    return buf.raw[: length.value]


def map_update(fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
    check("bpf_map_update_elem", lib().bpf_map_update_elem(fd, key, value, flags))


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    value = ctypes.create_string_buffer(value_size)
    if lib().bpf_map_lookup_elem(fd, key, value) < 0:
        return None
    return value.raw


def map_items(fd: int, key_size: int, value_size: int) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a hash map; entries removed meanwhile are skipped."""
    key = ctypes.create_string_buffer(key_size)
    previous: Any = None
    while lib().bpf_map_get_next_key(fd, previous, key) == 0:
        value = map_lookup(fd, key.raw, value_size)
        if value is not None:
            yield key.raw, value
        previous = ctypes.create_string_buffer(key.raw, key_size)


def prog_fd_by_id(prog_id: int) -> int:
    return check(f"program {prog_id}", lib().bpf_prog_get_fd_by_id(prog_id))


def exists(kind: str, ident: int) -> bool:
    """Whether the kernel still holds the map or link with this id (freed objects go asynchronously)."""
    opener = lib().bpf_map_get_fd_by_id if kind == "map" else lib().bpf_link_get_fd_by_id
    fd = opener(ident)
    if fd < 0:
        return False
    os.close(fd)
    return True


def map_fd_by_id(map_id: int) -> int:
    return check(f"map {map_id}", lib().bpf_map_get_fd_by_id(map_id))


def prog_test_run(prog_fd: int, packet: bytes) -> tuple[int, bytes]:
    """BPF_PROG_TEST_RUN: the program's verdict and the packet as it left the program."""
    data_in = ctypes.create_string_buffer(packet, len(packet))
    data_out = ctypes.create_string_buffer(len(packet) + 256)
    opts = TestRunOpts(sz=ctypes.sizeof(TestRunOpts))
    opts.data_in = ctypes.cast(data_in, ctypes.c_void_p)
    opts.data_out = ctypes.cast(data_out, ctypes.c_void_p)
    opts.data_size_in = len(packet)
    opts.data_size_out = len(data_out)
    opts.repeat = 1
    check("bpf_prog_test_run_opts", lib().bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)))
    return int(opts.retval), data_out.raw[: opts.data_size_out]
