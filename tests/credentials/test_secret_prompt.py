"""The prompt for a secret the SSH source needed (pytest-qt): asked once per account,
stored in the keyring, then the host is reconnected."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from gpu_tray.credentials.keyring_store import NO_KEYRING_MESSAGE, SecretRequest, SecretStore
from gpu_tray.ui.dialogs.secret_prompt import SecretPrompter, prompt_texts
from tests.credentials.test_secret_store import DictBackend


def from_worker(fn) -> None:
    """Call `fn` on another thread, as the poller's workers do."""
    t = threading.Thread(target=fn)
    t.start()
    t.join(10)


def test_a_refused_password_opens_one_prompt_and_saving_reconnects(qtbot) -> None:
    backend = DictBackend()
    store = SecretStore(backend)
    store.set_password("alice", "10.0.0.3", 2222, "old")
    assert store.password("alice", "10.0.0.3", 2222) == "old"
    prompter = SecretPrompter(store)
    request = SecretRequest.for_password("alice", "10.0.0.3", 2222, host_name="node3")
    from_worker(lambda: store.mark_rejected(request))
    from_worker(lambda: store.mark_rejected(request))  # a second failure: still one dialog
    qtbot.waitUntil(lambda: len(prompter.dialogs) == 1, timeout=5_000)
    qtbot.wait(100)
    assert len(prompter.dialogs) == 1
    [dialog] = prompter.dialogs.values()
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Password refused: node3"
    assert dialog.text.text() == (
        "The server refused the password for alice@10.0.0.3:2222. Type the right one. "
        "It is saved in the system keyring, never in a file."
    )
    assert store.password("alice", "10.0.0.3", 2222) is None  # not offered again
    qtbot.keyClicks(dialog.secret, "new one")
    with qtbot.waitSignal(prompter.answered, timeout=10_000) as blocker:
        qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    assert blocker.args == ["node3"]
    assert backend.items[("gpu-tray", "alice@10.0.0.3:2222")] == "new one"
    assert store.password("alice", "10.0.0.3", 2222) == "new one"
    qtbot.waitUntil(lambda: not prompter.dialogs, timeout=5_000)
    prompter.close()


def test_cancel_stores_nothing_and_reconnects_nothing(qtbot) -> None:
    store = SecretStore(DictBackend())
    prompter = SecretPrompter(store)
    request = SecretRequest.for_passphrase("/keys/id_lab", host_name="node3")
    from_worker(lambda: store.mark_missing(request))
    qtbot.waitUntil(lambda: len(prompter.dialogs) == 1, timeout=5_000)
    [dialog] = prompter.dialogs.values()
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Key passphrase needed: node3"
    with qtbot.assertNotEmitted(prompter.answered, wait=200):
        dialog.reject()
    assert store.passphrase("/keys/id_lab") is None
    assert not prompter.dialogs
    prompter.close()


def test_without_a_keyring_the_prompt_says_so() -> None:
    request = SecretRequest.for_password("a", "h", 22, "n")
    assert prompt_texts(request, persistent=False) == (
        "Password needed: n",
        "n asks for the password for a@h:22.",
    )


def test_no_keyring_note_in_the_prompt(qtbot) -> None:
    store = SecretStore(type("K", (), {"__module__": "keyring.backends.fail"})())
    prompter = SecretPrompter(store)
    from_worker(lambda: store.mark_missing(SecretRequest.for_password("a", "h", 22, "n")))
    qtbot.waitUntil(lambda: len(prompter.dialogs) == 1, timeout=5_000)
    [dialog] = prompter.dialogs.values()
    qtbot.addWidget(dialog)
    assert dialog.note.text() == NO_KEYRING_MESSAGE
    prompter.close()
