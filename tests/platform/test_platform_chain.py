"""The notification chain for each operating system, chosen from sys.platform at start."""

from __future__ import annotations

import sys

import pytest

from gpu_tray.platform import chain
from gpu_tray.platform.notify import LogBackend


def factories() -> dict:
    return {"freedesktop": object, "tray balloon": object, "log": LogBackend}


@pytest.mark.parametrize(
    ("platform", "names"),
    [
        ("linux", ("freedesktop", "tray balloon", "log")),
        ("freebsd14", ("freedesktop", "tray balloon", "log")),
        # No session D-Bus there; the balloon is the native notification centre.
        ("darwin", ("tray balloon", "log")),
        ("win32", ("tray balloon", "log")),
    ],
)
def test_each_platform_has_its_order_and_ends_in_the_log(platform: str, names: tuple) -> None:
    assert chain.backend_names(platform) == names
    built = chain.notification_chain(factories(), platform)
    assert [name for name, _ in built] == list(names)
    assert built[-1] == ("log", LogBackend)


def test_without_an_argument_it_follows_sys_platform(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert chain.backend_names() == ("tray balloon", "log")
    monkeypatch.setattr(sys, "platform", "linux")
    assert chain.backend_names() == ("freedesktop", "tray balloon", "log")


def test_a_factory_the_platform_needs_must_be_given() -> None:
    with pytest.raises(
        ValueError, match=r"^no factory for the notification backend\(s\): freedesktop$"
    ):
        chain.notification_chain({"tray balloon": object, "log": LogBackend}, "linux")
    # macOS does not need the freedesktop one.
    assert len(chain.notification_chain({"tray balloon": object, "log": LogBackend}, "darwin")) == 2
