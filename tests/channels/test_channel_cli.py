"""`gpu-tray channel add|list|remove|test` as a user runs them, against a real
gnome-keyring and real receivers on loopback. The URL ends up in the keyring and
nowhere else: not in config.toml, not in any file under the user's folders, not in
stdout or stderr, even with -v."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.credentials.cli_helpers import User
from tests.harness import keyring as harness
from tests.harness.endpoints import http_endpoint, smtp_server

pytestmark = [pytest.mark.keyring]

TOKEN = "Zx9-wEbHoOk-s3cr3t-77"


def user(tmp_path: Path, config: str = "poll_interval_s = 5\n") -> User:
    u = User(tmp_path / "user")
    u.config.parent.mkdir(parents=True)
    u.config.write_text(config)
    return u


def everything(*results) -> str:
    return "".join(r.stdout + r.stderr for r in results)


def test_add_list_test_remove_with_a_json_webhook(secret_service, tmp_path: Path) -> None:
    u = user(tmp_path, '# lab\npoll_interval_s = 5\n\n[[watch]]\nhost = "node3"\n')
    with http_endpoint() as hook:
        url = f"json://127.0.0.1:{hook.port}/hooks/{TOKEN}"
        added = u.run("channel", "add", "lab-hook", "--stdin", "-v", input=url + "\n")
        assert (added.returncode, added.stdout) == (
            0,
            "Saved the URL of channel lab-hook in the system keyring (SecretService Keyring); "
            f"added it to {u.config}.\n",
        )
        assert harness.stored_secret(secret_service.address, "gpu-tray", "channel:lab-hook") == url
        assert u.config.read_text() == (
            '# lab\npoll_interval_s = 5\n\n[[watch]]\nhost = "node3"\n\n'
            '[[channels]]\nname = "lab-hook"\n'
        )
        listed = u.run("channel", "list")
        assert (listed.returncode, listed.stdout) == (
            0,
            "lab-hook  URL in the keyring, used by 0 rules\n",
        )
        tested = u.run("channel", "test", "lab-hook", "-v")
        assert (tested.returncode, tested.stdout) == (
            0,
            "Sent a test message to channel lab-hook.\n",
        )
        [post] = hook.posts
        assert post.path == f"/hooks/{TOKEN}"
        assert (post.json["title"], post.json["message"]) == (
            "gpu-tray test",
            "This channel works: gpu-tray can reach it.",
        )

        hook.status = 500
        failed = u.run("channel", "test", "lab-hook", "-v")
        assert (failed.returncode, failed.stdout, failed.stderr.splitlines()[-1]) == (
            1,
            "",
            "gpu-tray: channel lab-hook: not delivered: Failed to send JSON POST notification: "
            "Internal server error., error=500.",
        )
        removed = u.run("channel", "remove", "lab-hook")
        assert (removed.returncode, removed.stdout) == (
            0,
            f"Removed channel lab-hook: forgot its URL, removed it from {u.config}.\n",
        )
    assert harness.stored_secret(secret_service.address, "gpu-tray", "channel:lab-hook") is None
    assert u.config.read_text() == '# lab\npoll_interval_s = 5\n\n[[watch]]\nhost = "node3"\n'
    outputs = everything(added, listed, tested, failed, removed)
    assert TOKEN not in outputs
    assert "keyring backend: SecretService Keyring" in added.stderr  # -v logged
    assert u.files_containing(TOKEN) == []


def test_a_channel_by_email_through_a_real_smtp_server(secret_service, tmp_path: Path) -> None:
    u = user(tmp_path)
    with smtp_server() as smtp:
        url = f"mailto://127.0.0.1:{smtp.port}/team@lab.example?from=gpu-tray@lab.example"
        assert u.run("channel", "add", "mail", "--stdin", input=url + "\n").returncode == 0
        tested = u.run("channel", "test", "mail")
        assert (tested.returncode, tested.stdout) == (0, "Sent a test message to channel mail.\n")
        [mail] = smtp.mails
        assert mail["Subject"] == "gpu-tray test"
        assert smtp.envelopes == [("gpu-tray@lab.example", ["team@lab.example"])]


def test_remove_drops_rules_that_only_sent_there(secret_service, tmp_path: Path) -> None:
    u = user(tmp_path)
    with http_endpoint() as hook:
        url = f"ntfy://127.0.0.1:{hook.port}/{TOKEN}"
        assert u.run("channel", "add", "phone", "--stdin", input=url + "\n").returncode == 0
    u.config.write_text(
        u.config.read_text()
        + '\n[[watch]]\nevent = "host_down"\nchannels = ["phone"]\n'
        + '\n[[watch]]\nhost = "node3"\nchannels = ["desktop", "phone"]\n'
    )
    listed = u.run("channel", "list")
    assert listed.stdout == "phone  URL in the keyring, used by 2 rules\n"
    removed = u.run("channel", "remove", "phone")
    assert removed.stdout == (
        f"Removed channel phone: forgot its URL, removed it from {u.config}, "
        "removed 1 watch rule that sent only to it.\n"
    )
    assert u.config.read_text() == (
        'poll_interval_s = 5\n\n[[watch]]\nhost = "node3"\nchannels = ["desktop"]\n'
    )
    again = u.run("channel", "remove", "phone")
    assert (again.returncode, again.stderr) == (
        2,
        f"gpu-tray: no channel named 'phone' in {u.config} or in the system keyring\n",
    )


def test_usage_errors_and_a_channel_without_url(secret_service, tmp_path: Path) -> None:
    u = user(tmp_path, '[[channels]]\nname = "slack"\n')
    r = u.run("channel", "add", "desktop", "--stdin", input="json://x/y\n")
    assert (r.returncode, r.stderr) == (
        2,
        'gpu-tray: channel add: "desktop" is the desktop\'s own channel: pick another name\n',
    )
    r = u.run("channel", "add", "lab", "--stdin", input=f"nosuch://{TOKEN}\n")
    assert (r.returncode, r.stderr) == (
        2,
        "gpu-tray: channel add lab: Apprise does not understand this URL: check its scheme and "
        "fields (https://github.com/caronc/apprise/wiki lists them); nothing was saved\n",
    )
    assert TOKEN not in r.stdout + r.stderr
    r = u.run("channel", "add", "lab", "--stdin", input="\n")
    assert (r.returncode, r.stderr) == (
        2,
        "gpu-tray: channel add lab: no URL on stdin; nothing was saved\n",
    )
    r = u.run("channel", "add", "lab", input="")
    assert (r.returncode, r.stderr) == (
        2,
        "gpu-tray: channel add lab: stdin is not a terminal: pass --stdin to read the URL "
        "from it\n",
    )
    r = u.run("channel", "list")
    assert r.stdout == "slack  no URL in the keyring, used by 0 rules\n"
    r = u.run("channel", "test", "slack")
    assert (r.returncode, r.stderr) == (
        1,
        "gpu-tray: channel slack has no URL in the system keyring: store one with "
        "`gpu-tray channel add slack`\n",
    )


def test_without_a_keyring_nothing_is_saved(no_dbus, tmp_path: Path) -> None:
    u = user(tmp_path)
    r = u.run("channel", "add", "lab", "--stdin", input=f"json://127.0.0.1:9/{TOKEN}\n")
    assert (r.returncode, r.stdout, r.stderr) == (
        1,
        "",
        "gpu-tray: No system keyring found: passwords will be kept for this session only. "
        "Nothing was changed.\n",
    )
    assert u.config.read_text() == "poll_interval_s = 5\n"
    assert u.files_containing(TOKEN) == []
