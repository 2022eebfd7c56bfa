"""A stand-in for Windows' `winreg` module, for tests of start at login on any machine:
the part of its API gpu-tray uses, over a dict, raising what the real one raises."""

from __future__ import annotations

import types

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"


class FakeKey:
    def __init__(self, path: str, access: int) -> None:
        self.path = path
        self.access = access

    def __enter__(self) -> FakeKey:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class FakeWinreg(types.ModuleType):
    """The part of `winreg` the app uses, over a dict: {key path: {name: (value, type)}}.
    Missing keys and values raise FileNotFoundError, as the real module does."""

    HKEY_CURRENT_USER = 0x80000001
    KEY_READ = 0x20019
    KEY_SET_VALUE = 0x0002
    REG_SZ = 1
    REG_EXPAND_SZ = 2
    REG_BINARY = 3

    def __init__(self) -> None:
        super().__init__("winreg")
        self.keys: dict[str, dict[str, tuple[object, int]]] = {}

    def OpenKey(self, root: int, path: str, reserved: int = 0, access: int = KEY_READ) -> FakeKey:
        assert root == self.HKEY_CURRENT_USER  # never HKLM: no admin rights needed
        if path not in self.keys:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return FakeKey(path, access)

    def CreateKeyEx(self, root: int, path: str, reserved: int = 0, access: int = 0) -> FakeKey:
        assert root == self.HKEY_CURRENT_USER
        self.keys.setdefault(path, {})
        return FakeKey(path, access)

    def QueryValueEx(self, key: FakeKey, name: str) -> tuple[object, int]:
        try:
            return self.keys[key.path][name]
        except KeyError:
            raise FileNotFoundError(2, "The system cannot find the file specified") from None

    def SetValueEx(self, key: FakeKey, name: str, reserved: int, kind: int, value: object) -> None:
        assert key.access & self.KEY_SET_VALUE, "opened read-only"
        self.keys[key.path][name] = (value, kind)

    def DeleteValue(self, key: FakeKey, name: str) -> None:
        assert key.access & self.KEY_SET_VALUE, "opened read-only"
        if name not in self.keys[key.path]:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        del self.keys[key.path][name]
