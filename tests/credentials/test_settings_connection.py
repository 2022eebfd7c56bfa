"""Against real sshd hosts: "Test connection" in the settings dialog, the host-key dialog
it leads to, and what happens to a wrong password (one attempt, never a loop)."""

from __future__ import annotations

import logging
import queue
import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gpu_tray.core.config import parse_config
from gpu_tray.core.models import HostSnapshot, HostState
from gpu_tray.core.settings import HostConfig
from gpu_tray.credentials.keyring_store import SecretRequest, SecretStore
from gpu_tray.sources.poller import Poller
from gpu_tray.sources.ssh.host_keys import KnownHosts, trust
from gpu_tray.sources.ssh.probe import SshProbe
from gpu_tray.sources.ssh.session import SshSession
from gpu_tray.ui.settings.dialog import SettingsDialog
from tests.ssh.conftest import known_hosts

pytestmark = pytest.mark.sshd


def config_for(sshd, world, tmp_path: Path, **fields: str):
    lines = [
        "[[hosts]]",
        'name = "node"',
        f'hostname = "{sshd.address}"',
        f"port = {sshd.port}",
        f'user = "{world.user}"',
        *(f'{k} = "{v}"' for k, v in fields.items()),
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return parse_config(path.read_text(), path), path


def factory(known: KnownHosts):
    def make(host: HostConfig, secrets) -> SshProbe:
        return SshProbe(host, secrets, session=SshSession(host, secrets, known_hosts=known))

    return make


def click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def run_test(qtbot, d: SettingsDialog) -> str:
    click(qtbot, d.test_button)
    qtbot.waitUntil(lambda: d.test_button.isEnabled(), timeout=60_000)
    return d.test_result.text()


def save_secret(qtbot, d: SettingsDialog, secret: str) -> str:
    d.secret.setText(secret)
    d.secret_status.clear()
    click(qtbot, d.save_secret_button)
    qtbot.waitUntil(lambda: d.secret_status.text() not in ("", "Saving…"), timeout=20_000)
    return d.secret_status.text()


@pytest.mark.keyring
def test_connection_ok_then_auth_failed_with_a_wrong_password(
    qtbot, secret_service, sshd, world, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    config, path = config_for(sshd, world, tmp_path, auth="password")
    store = SecretStore()
    d = SettingsDialog(config, path, store, probe_factory=factory(known_hosts(tmp_path, sshd)))
    qtbot.addWidget(d)
    d.show()
    account = f"{world.user}@{sshd.address}:{sshd.port}"
    assert save_secret(qtbot, d, world.password) == (
        f"The password for {account}: Saved in the system keyring (SecretService Keyring)."
    )
    ok = run_test(qtbot, d)
    assert re.fullmatch(r"ok: node answered in \d+ ms with 1 GPU\.", ok), ok
    assert d.test_result.styleSheet() == "color: #1b5e20;"

    save_secret(qtbot, d, "not the password")
    failed = run_test(qtbot, d)
    assert failed == (
        f"auth_failed: Authentication failed for {account} (tried password from the keyring): "
        f"the server rejected the password stored for {account}. "
        "Set it with `gpu-tray password set node`"
    )
    assert sshd.log_text().count(f"Failed password for {world.user}") == 1
    assert not d.review_key_button.isVisible()
    assert world.password not in caplog.text and "not the password" not in caplog.text


def test_unknown_key_test_review_trust_then_ok(qtbot, sshd, world, tmp_path: Path) -> None:
    config, path = config_for(sshd, world, tmp_path, identity_file=str(world.client_key))
    app_file = tmp_path / "app_known_hosts"
    known = KnownHosts(files=[], app_file=app_file)
    d = SettingsDialog(
        config,
        path,
        SecretStore(type("K", (), {"__module__": "keyring.backends.null"})()),
        probe_factory=factory(known),
        trust=lambda info: trust(info, app_file),
    )
    qtbot.addWidget(d)
    d.show()
    key_type = sshd.known_hosts_line().split()[1]
    assert run_test(qtbot, d) == (
        f"host_key_unknown: Unknown host key for {sshd.host_id}: {key_type} {sshd.fingerprint}. "
        "Check the fingerprint, then trust it with `gpu-tray trust node`"
    )
    assert d.review_key_button.isVisible()
    click(qtbot, d.review_key_button)
    dialog = d.trust_dialog
    # The same fingerprint `ssh-keygen -lf` prints for the server's host key.
    assert dialog.fingerprint.text() == sshd.fingerprint
    assert sshd.fingerprint.startswith("SHA256:")
    with qtbot.waitSignal(d.reconnectRequested, timeout=10_000) as blocker:
        click(qtbot, dialog.trust_button)
    assert blocker.args == ["node"]
    assert app_file.read_text() == sshd.known_hosts_line()
    # Trust re-runs the test by itself.
    qtbot.waitUntil(lambda: d.test_result.text().startswith("ok:"), timeout=60_000)


def test_changed_key_review_offers_no_trust(qtbot, sshd, world, tmp_path: Path) -> None:
    config, path = config_for(sshd, world, tmp_path, identity_file=str(world.client_key))
    old = sshd.fingerprint
    known_file = tmp_path / "known_hosts"
    known = known_hosts(tmp_path, sshd)
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    d = SettingsDialog(
        config,
        path,
        SecretStore(type("K", (), {"__module__": "keyring.backends.null"})()),
        probe_factory=factory(known),
    )
    qtbot.addWidget(d)
    d.show()
    text = run_test(qtbot, d)
    assert text.startswith(f"host_key_changed: HOST KEY CHANGED for {sshd.host_id}")
    click(qtbot, d.review_key_button)
    dialog = d.trust_dialog
    assert dialog.trust_button is None
    assert dialog.known_fingerprint.text() == old
    assert dialog.fingerprint.text() == sshd.fingerprint
    assert dialog.location.text() == f"{known_file}, line 1"
    assert dialog.command.text() == f"ssh-keygen -R '{sshd.host_id}' -f {known_file}"


@pytest.mark.keyring
def test_a_wrong_password_is_tried_once_and_never_in_a_loop(
    secret_service, sshd, world, tmp_path: Path
) -> None:
    store = SecretStore()
    store.set_password(world.user, sshd.address, sshd.port, "wrong horse")
    host = HostConfig(
        "node", hostname=sshd.address, port=sshd.port, user=world.user, auth="password"
    )
    probe = factory(known_hosts(tmp_path, sshd))(host, store)
    inbox: queue.Queue[HostSnapshot] = queue.Queue()
    poller = Poller([probe], 0.05, inbox.put)
    poller.start()
    try:
        snap = inbox.get(timeout=30)
        while snap.state is HostState.CONNECTING:
            snap = inbox.get(timeout=30)
        assert snap.state is HostState.AUTH_FAILED
        poller.refresh_now()  # "Refresh" does not retry a host waiting for the user
        with pytest.raises(queue.Empty):
            inbox.get(timeout=1.0)  # twenty poll intervals: nothing was tried again
    finally:
        poller.stop()
    assert sshd.log_text().count(f"Failed password for {world.user}") == 1


@pytest.mark.keyring
def test_a_refused_password_reaches_the_prompt_and_is_not_offered_again(
    secret_service, sshd, world, tmp_path: Path
) -> None:
    store = SecretStore()
    requests: list[SecretRequest] = []
    store.on_request(requests.append)
    store.set_password(world.user, sshd.address, sshd.port, "wrong horse")
    host = HostConfig(
        "node", hostname=sshd.address, port=sshd.port, user=world.user, auth="password"
    )
    probe = factory(known_hosts(tmp_path, sshd))(host, store)
    try:
        [snap] = probe.poll()
        assert snap.state is HostState.AUTH_FAILED
        assert requests == [
            SecretRequest.for_password(
                world.user, sshd.address, sshd.port, host_name="node", rejected=True
            )
        ]
        probe.reset()  # the user clicked something: one more poll
        [snap] = probe.poll()
        assert snap.state is HostState.AUTH_FAILED
        # The refused password was not sent again.
        assert sshd.log_text().count(f"Failed password for {world.user}") == 1
    finally:
        probe.close()
