"""Everything that goes wrong between us and a GPU host, against real sshd servers:
each failure is a typed state with an exact message, and none takes the others down."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gpu_tray.core.models import HostState
from gpu_tray.sources.poller import Poller
from gpu_tray.sources.ssh.host_keys import trust
from gpu_tray.sources.ssh.nvsmi import MSG_MISSING
from tests.harness.sshd import free_port
from tests.ssh.conftest import Secrets, host_for, known_hosts, make_probe
from tests.ssh.proxies import DelayProxy, Tarpit

pytestmark = pytest.mark.sshd


def test_unknown_host_key_is_rejected_until_trusted(sshd, tmp_path: Path, probes) -> None:
    known = known_hosts(tmp_path)  # trusts nothing
    probe = make_probe(host_for(sshd), known)
    probes.append(probe)
    [snap] = probe.poll()
    assert snap.state is HostState.HOST_KEY_UNKNOWN
    assert snap.message == (
        f"Unknown host key for {sshd.host_id}: ssh-ed25519 {sshd.fingerprint}. "
        "Check the fingerprint, then trust it with `gpu-tray trust node`"
    )
    assert snap.host_key is not None
    assert (snap.host_key.host_id, snap.host_key.key_type, snap.host_key.fingerprint) == (
        sshd.host_id,
        "ssh-ed25519",
        sshd.fingerprint,
    )
    assert not snap.gpus
    trust(snap.host_key, known.app_file)
    assert known.app_file.read_text() == sshd.known_hosts_line()
    probe.reset()
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (HostState.OK, None)


def test_changed_host_key_is_refused_with_the_line_to_fix(
    make_sshd, tmp_path: Path, probes
) -> None:
    sshd = make_sshd()
    known = known_hosts(tmp_path, sshd)
    old = sshd.fingerprint
    probe = make_probe(host_for(sshd), known)
    probes.append(probe)
    assert probe.poll()[0].ok
    sshd.kill()  # and the session we had: the next poll must reconnect
    sshd.new_host_key()
    sshd.start()
    [snap] = probe.poll()
    assert snap.state is HostState.HOST_KEY_CHANGED
    assert snap.message == (
        f"HOST KEY CHANGED for {sshd.host_id}: it now offers ssh-ed25519 {sshd.fingerprint}, "
        f"but {tmp_path / 'known_hosts'} line 1 has {old}. Refusing to connect: this can be "
        "an attack. If the change is expected, remove that line"
    )
    assert snap.host_key is not None
    assert (snap.host_key.known_fingerprint, snap.host_key.known_line) == (old, 1)
    # The last good data is not thrown away, but it is stale (the poller marks it).
    assert old != sshd.fingerprint


def test_a_server_with_several_keys_is_asked_for_the_known_one(
    make_sshd, world, tmp_path: Path, probes
) -> None:
    """An RSA key on file and a server that prefers ed25519 is not a changed host."""
    sshd = make_sshd(key_type="rsa")
    extra = sshd.dir / "host_ed25519_extra"
    from tests.harness.sshd import keygen

    keygen(extra)
    sshd.stop()
    sshd.extra_config = f"HostKey {extra}\n"
    sshd.start()
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd))
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (HostState.OK, None)


def test_wrong_password_is_tried_once_and_not_again(sshd, world, tmp_path: Path) -> None:
    host = host_for(sshd, auth="password", identity_file=None)
    secrets = Secrets(password="not the password")
    probe = make_probe(host, known_hosts(tmp_path, sshd), secrets)
    seen: list = []
    blocked = threading.Event()

    def on_snapshot(snap) -> None:
        seen.append(snap)
        if snap.state is HostState.AUTH_FAILED:
            blocked.set()

    poller = Poller([probe], interval_s=0.05, on_snapshot=on_snapshot)
    poller.start()
    try:
        assert blocked.wait(20)
        worker = poller._workers[0]
        for _ in range(200):  # the worker marks itself blocked right after publishing
            if worker.blocked:
                break
            threading.Event().wait(0.01)
        assert worker.blocked
        poller.refresh_now()  # "Refresh now" must not retry a rejected password either
        assert [s.state for s in seen] == [HostState.CONNECTING, HostState.AUTH_FAILED]
        assert seen[-1].message == (
            f"Authentication failed for {world.user}@{sshd.address}:{sshd.port} "
            "(tried password from the keyring): the server rejected the password stored for "
            f"{world.user}@{sshd.address}:{sshd.port}. Set it with `gpu-tray password set node`"
        )
        assert sshd.log_text().count(f"Failed password for {world.user}") == 1
        assert len(secrets.password_lookups) == 1
    finally:
        poller.stop()


def test_right_password_logs_in(sshd, world, tmp_path: Path, probes) -> None:
    host = host_for(sshd, auth="password", identity_file=None)
    secrets = Secrets(password=world.password)
    probe = make_probe(host, known_hosts(tmp_path, sshd), secrets)
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (HostState.OK, None)
    assert secrets.password_lookups == [(world.user, sshd.address, sshd.port)]
    assert "Accepted password for gputray-tester-long" in sshd.log_text()


def test_no_password_stored(sshd, world, tmp_path: Path, probes) -> None:
    host = host_for(sshd, auth="password", identity_file=None)
    probe = make_probe(host, known_hosts(tmp_path, sshd), Secrets())
    probes.append(probe)
    [snap] = probe.poll()
    assert snap.state is HostState.AUTH_FAILED
    assert snap.message == (
        f"Authentication failed for {world.user}@{sshd.address}:{sshd.port} (nothing to try): "
        f"no password is stored for {world.user}@{sshd.address}:{sshd.port}. "
        "Set it with `gpu-tray password set node`"
    )
    assert "Failed password" not in sshd.log_text()


def test_nothing_listening(tmp_path: Path, probes) -> None:
    port = free_port("127.0.0.9")
    probe = make_probe(host_for_address("127.0.0.9", port), known_hosts(tmp_path))
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (
        HostState.UNREACHABLE,
        f"Connection refused by 127.0.0.9:{port}",
    )


def host_for_address(address: str, port: int):
    from gpu_tray.core.settings import HostConfig

    return HostConfig("node", hostname=address, port=port, user="nobody")


def test_tarpit_times_out_on_the_banner(tmp_path: Path, probes) -> None:
    with Tarpit("127.0.0.10") as pit:
        probe = make_probe(
            host_for_address(pit.address, pit.port),
            known_hosts(tmp_path),
            ssh_config_text="Host *\n  ConnectTimeout 1\n",
        )
        probes.append(probe)
        [snap] = probe.poll()
    assert (snap.state, snap.message) == (
        HostState.TIMEOUT,
        f"127.0.0.10:{pit.port} accepted the connection but sent no SSH banner within 1 s",
    )


def test_slow_link_still_works(sshd, tmp_path: Path, probes) -> None:
    with DelayProxy("127.0.0.11", sshd.address, sshd.port, delay_s=0.05) as proxy:
        host = host_for(sshd)
        host = type(host)(**{**_fields(host), "hostname": proxy.address, "port": proxy.port})
        known = known_hosts(tmp_path)
        known.app_file.write_text(sshd.known_hosts_line().replace(sshd.host_id, proxy.host_id))
        probe = make_probe(host, known)
        probes.append(probe)
        [snap] = probe.poll()
        assert (snap.state, snap.message) == (HostState.OK, None)
        assert snap.gpus[0].name == "NVIDIA H100 80GB HBM3"
        # One exec is one round trip through the 2 x 50 ms link, and no more than a few.
        assert snap.latency_ms is not None and snap.latency_ms >= 100


def test_link_slower_than_the_deadline_times_out(sshd, tmp_path: Path, probes) -> None:
    with DelayProxy("127.0.0.12", sshd.address, sshd.port, delay_s=0.4) as proxy:
        host = host_for(sshd)
        host = type(host)(**{**_fields(host), "hostname": proxy.address, "port": proxy.port})
        known = known_hosts(tmp_path)
        known.app_file.write_text(sshd.known_hosts_line().replace(sshd.host_id, proxy.host_id))
        probe = make_probe(host, known, command_timeout_s=0.5)
        probes.append(probe)
        [snap] = probe.poll()
    assert (snap.state, snap.message) == (
        HostState.TIMEOUT,
        f"The poll command on 127.0.0.12:{proxy.port} did not finish within 0.5 s",
    )


def test_hung_nvidia_smi_hits_the_command_deadline(sshd, world, tmp_path: Path, probes) -> None:
    sshd.set_scenario(sleep=4, gpus=[])
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd), command_timeout_s=1)
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (
        HostState.TIMEOUT,
        f"The poll command on {sshd.address}:{sshd.port} did not finish within 1 s",
    )


def test_sshd_killed_and_restarted_reconnects_and_keeps_stale_data(sshd, tmp_path: Path) -> None:
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd))
    seen: list = []
    got = threading.Condition()

    def on_snapshot(snap) -> None:
        with got:
            seen.append(snap)
            got.notify_all()

    def wait_for(pred) -> None:
        with got:
            assert got.wait_for(lambda: pred(seen), 30), [(s.state, s.message) for s in seen]

    poller = Poller([probe], interval_s=0.05, on_snapshot=on_snapshot, max_backoff_s=0.2)
    poller.start()
    try:
        wait_for(lambda s: any(x.ok for x in s))
        sshd.kill()
        wait_for(lambda s: s[-1].state is HostState.UNREACHABLE)
        down = seen[-1]
        assert down.message == f"Connection refused by {sshd.address}:{sshd.port}"
        assert down.stale and down.gpus and down.data_at is not None
        sshd.start()
        poller.refresh_now()
        wait_for(lambda s: s[-1].ok)
        assert not seen[-1].stale
        assert probe.session.connects == 2
    finally:
        poller.stop()


def test_nvidia_smi_missing(make_sshd, tmp_path: Path, probes) -> None:
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has a real nvidia-smi on the remote PATH")
    sshd = make_sshd(with_nvidia_smi=False)
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd))
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (HostState.NVIDIA_SMI_MISSING, MSG_MISSING)


NVSMI_ERRORS = [
    (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running.",
        9,
        "nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate "
        "with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and "
        "running.",
    ),
    (
        "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 535.183",
        18,
        "nvidia-smi failed (exit 18): Failed to initialize NVML: Driver/library version "
        "mismatch NVML library version: 535.183",
    ),
    (
        "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error",
        15,
        "nvidia-smi failed (exit 15): Unable to determine the device handle for GPU "
        "0000:0B:00.0: Unknown Error",
    ),
    ("No devices were found", 6, "nvidia-smi failed (exit 6): No devices were found"),
    ("", 255, "nvidia-smi failed (exit 255): (no message)"),
]


@pytest.mark.parametrize(("text", "code", "message"), NVSMI_ERRORS)
def test_nvidia_smi_errors(sshd, tmp_path: Path, probes, text: str, code: int, message: str):
    sshd.set_scenario(error={"text": text, "exit": code})
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd))
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (HostState.NVIDIA_SMI_ERROR, message)


def test_garbage_output(sshd, tmp_path: Path, probes) -> None:
    sshd.set_scenario(raw="<html>\x00 proxy error, not csv\n")
    probe = make_probe(host_for(sshd), known_hosts(tmp_path, sshd))
    probes.append(probe)
    [snap] = probe.poll()
    assert (snap.state, snap.message) == (
        HostState.BAD_OUTPUT,
        "Unreadable nvidia-smi output: a GPU row has 2 fields, expected 10: "
        "'<html> proxy error, not csv'",  # the shell drops the NUL byte
    )


def _fields(host) -> dict:
    from dataclasses import asdict

    return {k: v for k, v in asdict(host).items() if k != "free"}
