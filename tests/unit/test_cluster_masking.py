"""Masking of join tokens, CA hashes and keys; node-script markers → progress Steps."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from labyrinth_tui.cloud.bootstrap.masking import Masker, mask_secrets
from labyrinth_tui.cloud.bootstrap.phases import PhaseTracker
from labyrinth_tui.model.progress import Step, StepState

TOKEN = "r61w3k.oom2m7zqt6m8p0fc"
HASH = "sha256:9dcf53ebff2089c12cf3af75e4540e58674ccd44282ba0285420852e4ebc5114"
JOIN = f"kubeadm join 10.168.0.2:6443 --token {TOKEN} --discovery-token-ca-cert-hash {HASH}"


def test_the_articles_join_command_keeps_its_shape_and_loses_its_secrets() -> None:
    masked = mask_secrets(JOIN)
    assert masked == (
        "kubeadm join 10.168.0.2:6443 --token ******.******** --discovery-token-ca-cert-hash sha256:********"
    )
    assert "r61w3k" not in masked and "9dcf53eb" not in masked


def test_kubeadm_init_output_and_kubeconfig_fields() -> None:
    key = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQ\n-----END EC PRIVATE KEY-----\n").decode()
    text = "\n".join(
        [
            f"[bootstrap-token] Using token: {TOKEN}",
            f"    client-key-data: {key}",
            '    "token": "abcdef-not-a-kubeadm-token",',
            "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.payload.sig",
            "--certificate-key 1b9e8e3f5c2d4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "server: https://10.168.0.2:6443",
        ]
    )
    masked = mask_secrets(text)
    for secret in (TOKEN, key, "abcdef-not-a-kubeadm-token", "eyJhbGci", "1b9e8e3f5c2d", "MIIEpAIBAAKCAQEA"):
        assert secret not in masked, secret
    assert "server: https://10.168.0.2:6443" in masked  # what is not a credential stays readable
    assert "client-key-data: ********" in masked


def test_known_secrets_are_masked_wherever_they_appear() -> None:
    masker = Masker()
    masker.add("s3cr3t-value-from-a-node")
    masker.add("abc")  # too short to be a secret worth masking: it would eat ordinary words
    assert masker("x=s3cr3t-value-from-a-node; abc") == "x=********; abc"
    step = masker.step(Step("node-1", "join", StepState.FAILED, log=f"oops {TOKEN} s3cr3t-value-from-a-node"))
    assert step.log == "oops ******.******** ********" and step.key == ("node-1", "join")


@given(st.from_regex(r"[a-z0-9]{6}\.[a-z0-9]{16}", fullmatch=True), st.text(max_size=40))
def test_any_bootstrap_token_is_masked_whatever_surrounds_it(token: str, around: str) -> None:
    assert token not in mask_secrets(f"{around} --token {token} {around}")
    assert token not in mask_secrets(f"{around}{token}")


def feed(lines: list[str]) -> tuple[PhaseTracker, list[Step]]:
    steps: list[Step] = []
    clock = iter(float(i) for i in range(1000))
    tracker = PhaseTracker("node-0", steps.append, Masker(), clock=lambda: next(clock))
    for line in lines:
        tracker.feed(line)
    return tracker, steps


def test_markers_become_steps_pending_running_done_skipped() -> None:
    tracker, steps = feed(
        [
            "::plan hostname kernel kubeadm-init",
            "::skip hostname",
            "::phase kernel",
            "sysctl ok",
            "::done kernel",
        ]
    )
    assert [(s.name, s.state) for s in steps[:3]] == [
        ("hostname", StepState.PENDING),
        ("kernel", StepState.PENDING),
        ("kubeadm-init", StepState.PENDING),
    ]
    by_state = {(s.name, s.state): s for s in steps}
    assert by_state[("hostname", StepState.SKIPPED)].fraction == 1.0
    done = by_state[("kernel", StepState.DONE)]
    assert done.log == "sysctl ok" and done.elapsed > 0 and done.fraction == 1.0
    assert tracker.done == ["kernel"] and tracker.skipped == ["hostname"] and not tracker.completed


def test_a_failing_phase_keeps_its_last_lines_masked() -> None:
    lines = ["::plan kubeadm-init", "::phase kubeadm-init", *(f"line {i}" for i in range(30))]
    lines += [
        f"kubeadm join 10.168.0.2:6443 --token {TOKEN}",
        "error execution phase",
        "::fail kubeadm-init 1",
    ]
    tracker, steps = feed(lines)
    failed = steps[-1]
    assert (failed.name, failed.state) == ("kubeadm-init", StepState.FAILED)
    shown = failed.log.splitlines()
    assert shown[-1] == "error execution phase" and shown[0] == "line 20"  # the last 12 lines
    assert TOKEN not in failed.log and "******.********" in failed.log
    assert tracker.failed == "kubeadm-init"
    assert all(TOKEN not in s.log for s in steps)
