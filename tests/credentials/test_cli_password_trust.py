"""`gpu-tray password` and `gpu-tray trust` as subprocesses, against a real gnome-keyring
and real sshd hosts: what is stored is what the next poll logs in with, and no
secret ends up in a file, a log line or the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.credentials.cli_helpers import User
from tests.harness import keyring as harness

pytestmark = [pytest.mark.sshd, pytest.mark.keyring]


def user_with_host(tmp_path: Path, sshd, world, *, trusted: bool = True, **fields: str) -> User:
    u = User(tmp_path / "user")
    if trusted:
        (u.home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line())
    lines = [
        "# my lab",
        "[[hosts]]",
        'name = "node"  # the fake H100 box',
        f'hostname = "{sshd.address}"',
        f"port = {sshd.port}",
        f'user = "{world.user}"',
        *(f'{k} = "{v}"' for k, v in fields.items()),
    ]
    u.config.parent.mkdir(parents=True)
    u.config.write_text("\n".join(lines) + "\n")
    return u


def test_password_set_stdin_then_status_logs_in_and_the_secret_stays_in_the_keyring(
    secret_service, sshd, world, tmp_path: Path
) -> None:
    u = user_with_host(tmp_path, sshd, world, auth="password")
    account = f"{world.user}@{sshd.address}:{sshd.port}"
    r = u.run("password", "set", "node", "--stdin", input=world.password + "\n")
    assert (r.returncode, r.stdout, r.stderr) == (
        0,
        f"Saved the password for {account} in the system keyring (SecretService Keyring).\n",
        "",
    )
    assert harness.stored_secret(secret_service.address, "gpu-tray", account) == world.password

    r = u.run("status", "--json", "-v")
    assert r.returncode == 0, r.stderr
    [host] = json.loads(r.stdout)["hosts"]
    assert (host["name"], host["state"], host["error"]) == ("node", "ok", None)
    assert f"Accepted password for {world.user}" in sshd.log_text()
    # The secret is nowhere but in the keyring: not in the output, the debug log, or
    # any file under the user's home, config and data folders.
    assert "keyring backend: SecretService Keyring" in r.stderr  # the debug log was on
    assert world.password not in r.stdout
    assert world.password not in r.stderr
    assert u.files_containing(world.password) == []

    r = u.run("password", "forget", "node")
    assert (r.returncode, r.stdout) == (0, f"Forgot the password for {account}.\n")
    assert harness.stored_secret(secret_service.address, "gpu-tray", account) is None
    r = u.run("password", "forget", "node")
    assert (r.returncode, r.stdout) == (
        0,
        f"Nothing to forget: no password for {account} was stored.\n",
    )
    r = u.run("status", "--json")
    assert r.returncode == 1
    [host] = json.loads(r.stdout)["hosts"]
    assert (host["state"], host["error"]) == (
        "auth_failed",
        f"Authentication failed for {account} (nothing to try): no password is stored for "
        f"{account}. Set it with `gpu-tray password set node`",
    )


def test_key_passphrase_from_the_keyring(secret_service, sshd, world, tmp_path: Path) -> None:
    from tests.harness.sshd import keygen

    key = keygen(tmp_path / "locked_ed25519", passphrase="open sesame")
    world.authorized_keys.write_text(
        world.authorized_keys.read_text() + Path(str(key) + ".pub").read_text()
    )
    u = user_with_host(tmp_path, sshd, world, auth="key", identity_file=str(key))
    r = u.run("password", "set", "--key", str(key), "--stdin", input="open sesame\n")
    assert (r.returncode, r.stdout) == (
        0,
        f"Saved the passphrase of {key} in the system keyring (SecretService Keyring).\n",
    )
    r = u.run("status", "--json", "-v")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["hosts"][0]["state"] == "ok"
    assert "open sesame" not in r.stdout + r.stderr
    assert u.files_containing("open sesame") == []


def test_password_cli_without_a_keyring_says_so_and_saves_nothing(
    no_dbus, sshd, world, tmp_path: Path
) -> None:
    u = user_with_host(tmp_path, sshd, world, auth="password")
    r = u.run("password", "set", "node", "--stdin", input="whatever\n")
    assert (r.returncode, r.stdout, r.stderr) == (
        1,
        "",
        "gpu-tray: No system keyring found: passwords will be kept for this session only. "
        "Nothing was changed.\n",
    )


def test_password_usage_errors_exit_2(secret_service, sshd, world, tmp_path: Path) -> None:
    u = user_with_host(tmp_path, sshd, world)
    r = u.run("password", "set", "nope", "--stdin", input="x\n")
    assert (r.returncode, r.stderr) == (
        2,
        f"gpu-tray: no host named 'nope' in {u.config} (hosts: node)\n",
    )
    r = u.run("password", "set", "node", "--stdin", input="\n")
    assert (r.returncode, r.stderr) == (2, "gpu-tray: no password on stdin; nothing was saved\n")
    r = u.run("password", "set", "node", input="x\n")
    assert (r.returncode, r.stderr) == (
        2,
        "gpu-tray: stdin is not a terminal: pass --stdin to read the password from it\n",
    )
    r = u.run("password", "set", "node", "--key", "/k")
    assert (r.returncode, r.stderr) == (
        2,
        "gpu-tray: password set: give a HOST, or --key PATH (not both)\n",
    )


def test_trust_unknown_key_then_poll_is_ok(sshd, world, tmp_path: Path) -> None:
    u = user_with_host(tmp_path, sshd, world, trusted=False, identity_file=str(world.client_key))
    r = u.run("status", "--json")
    [host] = json.loads(r.stdout)["hosts"]
    assert host["state"] == "host_key_unknown"

    r = u.run("trust", "node", input="y\n")
    key_type = sshd.known_hosts_line().split()[1]
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (
        f"The authenticity of host 'node ({sshd.host_id})' can't be established.\n"
        f"{key_type} key fingerprint is {sshd.fingerprint}.\n"
        f"Trust this key and remember it in {u.app_known_hosts}? [y/N] "
        f"Trusted {sshd.host_id} ({key_type} {sshd.fingerprint}): saved in {u.app_known_hosts}.\n"
    )
    assert u.app_known_hosts.read_text() == sshd.known_hosts_line()
    assert not (u.home / ".ssh" / "known_hosts").exists()  # the user's own file is untouched

    r = u.run("status", "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["hosts"][0]["state"] == "ok"

    r = u.run("trust", "node")
    assert (r.returncode, r.stdout) == (
        0,
        f"The host key of node ({sshd.host_id}) is already trusted: "
        f"{key_type} {sshd.fingerprint}.\n",
    )


def test_trust_declined_or_wrong_fingerprint_saves_nothing(sshd, world, tmp_path: Path) -> None:
    u = user_with_host(tmp_path, sshd, world, trusted=False)
    r = u.run("trust", "node", input="n\n")
    assert r.returncode == 1
    assert r.stdout.endswith("[y/N] Not trusted: nothing was saved.\n")
    r = u.run("trust", "node", input="")  # EOF: no
    assert (r.returncode, r.stdout.endswith("Not trusted: nothing was saved.\n")) == (1, True)
    key_type = sshd.known_hosts_line().split()[1]
    r = u.run("trust", "node", "--fingerprint", "SHA256:AAAA")
    assert (r.returncode, r.stdout, r.stderr) == (
        1,
        "",
        f"gpu-tray: node ({sshd.host_id}) offers {key_type} {sshd.fingerprint}, "
        "not SHA256:AAAA: nothing was saved.\n",
    )
    assert not u.app_known_hosts.exists()
    r = u.run("trust", "node", "--fingerprint", sshd.fingerprint)
    assert r.returncode == 0
    assert u.app_known_hosts.read_text() == sshd.known_hosts_line()


def test_trust_refuses_a_changed_key(sshd, world, tmp_path: Path) -> None:
    u = user_with_host(tmp_path, sshd, world, identity_file=str(world.client_key))
    known = u.home / ".ssh" / "known_hosts"
    old = sshd.fingerprint
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    key_type = sshd.known_hosts_line().split()[1]
    r = u.run("trust", "node", input="y\n")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        f"gpu-tray: the host key of node ({sshd.host_id}) has CHANGED: refusing to trust it.\n"
        f"  offered now: {key_type} {sshd.fingerprint}\n"
        f"  trusted:     {old} ({known}, line 1)\n"
        "Someone may be intercepting the connection, or the host was reinstalled. Ask its "
        f"administrator for the new fingerprint; if it matches, remove line 1 of {known} "
        f"(ssh-keygen -R '{sshd.host_id}' -f {known}) and run `gpu-tray trust node` again.\n"
    )
    assert not u.app_known_hosts.exists()
    r = u.run("status", "--json")
    assert json.loads(r.stdout)["hosts"][0]["state"] == "host_key_changed"


def test_trust_a_host_that_does_not_answer(tmp_path: Path) -> None:
    from tests.harness.sshd import free_port

    port = free_port("127.0.0.1")  # nothing listens there
    u = User(tmp_path / "user")
    u.config.parent.mkdir(parents=True)
    u.config.write_text(f'[[hosts]]\nname = "down"\nhostname = "127.0.0.1"\nport = {port}\n')
    r = u.run("trust", "down")
    assert (r.returncode, r.stdout, r.stderr) == (
        1,
        "",
        f"gpu-tray: down: Connection refused by 127.0.0.1:{port}\n",
    )
    r = u.run("trust", "up")
    assert (r.returncode, r.stderr) == (
        2,
        f"gpu-tray: no host named 'up' in {u.config} (hosts: down)\n",
    )
    r = u.run("trust")
    assert r.returncode == 2
    assert r.stderr.endswith("error: the following arguments are required: HOST\n")
