"""A real Secret Service for the tests: gnome-keyring on a private dbus-daemon.

Recipe from TESTING.md: fresh folders every run (a stale keyring comes back
locked), a newline on --unlock's stdin (empty stdin means "Prompt dismissed"),
and wait until org.freedesktop.secrets has an owner. The keyring daemon gets
folders of its own, apart from the app's, so that a test can grep every file
the app wrote for a secret without finding the keyring's own storage (a
keyring with an empty password is stored unencrypted).

Also: a "silent" Secret Service that owns the name and never answers, for the
timeout tests, and `lock_default_collection` for the locked-keyring tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SECRETS_NAME = "org.freedesktop.secrets"

# Variables that would let the keyring's unlock prompt reach a real display
# or the user's own session bus.
_STRIP = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "DBUS_STARTER_ADDRESS")


class HarnessError(RuntimeError):
    pass


def available() -> str | None:
    """None when the tools are here, else why the keyring tests are skipped."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install dbus gnome-keyring)"
    return None


def _clean_env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _STRIP}
    env.update(
        HOME=str(base / "home"),
        XDG_RUNTIME_DIR=str(base / "run"),
        XDG_DATA_HOME=str(base / "data"),
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_CACHE_HOME=str(base / "cache"),
    )
    for key in ("HOME", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        Path(env[key]).mkdir(parents=True, exist_ok=True, mode=0o700)
    return env


@dataclass
class Bus:
    """A private session bus. `address` goes into DBUS_SESSION_BUS_ADDRESS."""

    address: str
    process: subprocess.Popen[bytes]
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def has_owner(self, name: str) -> bool:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        bus = DBusAddress("/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus")
        with open_dbus_connection(self.address) as conn:
            reply = conn.send_and_get_reply(
                new_method_call(bus, "NameHasOwner", "s", (name,)), timeout=5
            )
        return bool(reply.body[0])

    def wait_for_owner(self, name: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.has_owner(name):
                return
            for child in self.children:
                if child.poll() is not None:
                    raise HarnessError(f"{child.args[0]} exited with {child.returncode}")
            time.sleep(0.05)
        raise HarnessError(f"nobody owns {name} on {self.address} after {timeout_s:g} s")

    def stop(self) -> None:
        for proc in [*self.children, self.process]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                if stream:
                    stream.close()


def start_bus(base: Path) -> Bus:
    env = _clean_env(base)
    sock = base / "run" / "bus"
    proc = subprocess.Popen(
        [
            "dbus-daemon",
            "--session",
            "--nofork",
            "--nopidfile",
            f"--address=unix:path={sock}",
            "--print-address=1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line:
        proc.kill()
        proc.wait()
        raise HarnessError("dbus-daemon printed no address")
    return Bus(address=line, process=proc)


@dataclass
class SecretService:
    bus: Bus
    env: dict[str, str]  # the keyring daemon's own folders (not the app's)
    log: Path

    @property
    def address(self) -> str:
        return self.bus.address


def start_secret_service(base: Path) -> SecretService:
    """gnome-keyring (secrets component) on a fresh private bus, login keyring unlocked."""
    bus = start_bus(base / "bus")
    env = _clean_env(base / "keyring")
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    log = base / "gnome-keyring.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    bus.children.append(daemon)
    assert daemon.stdin is not None
    daemon.stdin.write(b"\n")
    daemon.stdin.close()
    try:
        bus.wait_for_owner(SECRETS_NAME)
    except BaseException:
        bus.stop()
        raise
    return SecretService(bus=bus, env=env, log=log)


@contextlib.contextmanager
def silent_secret_service(base: Path) -> Iterator[Bus]:
    """A bus on which org.freedesktop.secrets is owned by someone who never answers:
    every keyring call blocks until the caller gives up."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    bus = start_bus(base / "bus")
    conn = open_dbus_connection(bus.address)
    try:
        driver = DBusAddress(
            "/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus"
        )
        reply = conn.send_and_get_reply(
            new_method_call(driver, "RequestName", "su", (SECRETS_NAME, 4)), timeout=5
        )
        if reply.body[0] != 1:  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
            raise HarnessError(f"could not own {SECRETS_NAME}: {reply.body}")
        yield bus
    finally:
        conn.close()
        bus.stop()


def lock_default_collection(address: str) -> None:
    """Lock the login keyring, as after a screen lock or a fresh boot."""
    from jeepney.io.blocking import open_dbus_connection
    from secretstorage import get_default_collection

    with open_dbus_connection(address) as conn:
        collection = get_default_collection(conn)
        collection.lock()
        if not collection.is_locked():
            raise HarnessError("the default collection did not lock")


def stored_secret(address: str, service: str, account: str) -> str | None:
    """Read an item straight from the Secret Service, bypassing our store and keyring."""
    from jeepney.io.blocking import open_dbus_connection
    from secretstorage import get_default_collection

    with open_dbus_connection(address) as conn:
        collection = get_default_collection(conn)
        for item in collection.search_items({"service": service, "username": account}):
            return item.get_secret().decode()
    return None
