"""`gpu-tray channel add|list|remove|test`: where rules can send besides the desktop.

A channel is an Apprise URL (Slack, Discord, Teams, Telegram, ntfy, Matrix, email,
JSON webhooks...). The URL is a secret: it goes to the OS keyring (service
`gpu-tray`, account `channel:NAME`), read without echo or from stdin with
`--stdin`, and config.toml gets only `[[channels]] name = "NAME"`. Nothing here
prints, logs or writes the URL; a failed test prints Apprise's reason with every
part of the URL that could be secret masked.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from gpu_tray.cli.common import Usage, config_path_of, load_for
from gpu_tray.cli.hosts import add_options

EXIT_FAILED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "channel", help="add, list, remove or test channels (Slack, ntfy, email... via Apprise)"
    )
    add_options(p)
    actions = p.add_subparsers(dest="channel_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="store a channel's Apprise URL in the system keyring")
    add_options(add)
    add.add_argument("name", metavar="NAME", help='a name for rules to use, e.g. "lab-slack"')
    add.add_argument(
        "--stdin", action="store_true", help="read the URL from the first line of stdin"
    )
    ls = actions.add_parser("list", help="the channels, and whether each has its URL stored")
    add_options(ls)
    rm = actions.add_parser("remove", help="forget a channel's URL and remove it from config")
    add_options(rm)
    rm.add_argument("name", metavar="NAME")
    test = actions.add_parser("test", help="send a test message (exit 1 when not delivered)")
    add_options(test)
    test.add_argument("name", metavar="NAME")


def run(args: argparse.Namespace) -> int:
    command = args.channel_command
    if command == "list":
        return _list(args)
    from gpu_tray.core.config import check_channel_name

    if problem := check_channel_name(args.name):
        raise Usage(f"channel {command}: {problem}")
    return {"add": _add, "remove": _remove, "test": _test}[command](args)


def _keyring():  # -> (ChannelStore, backend name) or an exit status
    from gpu_tray.channels.store import ChannelStore
    from gpu_tray.credentials.keyring_store import KeyringState, SecretStore

    secrets = SecretStore()
    status = secrets.status()
    if status.state is not KeyringState.OK:
        # This process ends in a moment: a session-only URL would be lost with it.
        print(f"gpu-tray: {status.message}. Nothing was changed.", file=sys.stderr)
        return None, ""
    return ChannelStore(secrets), status.backend


def _add(args: argparse.Namespace) -> int:
    from gpu_tray.channels.deliver import check_url
    from gpu_tray.core.config import ConfigError
    from gpu_tray.core.config_edit import add_channel, edit_config

    name = args.name
    url = _read_url(args)
    if problem := check_url(url):
        raise Usage(f"channel add {name}: {problem}; nothing was saved")
    store, backend = _keyring()
    if store is None:
        return EXIT_FAILED
    path = config_path_of(args)
    result = store.save(name, url)
    if not result.in_keyring:
        print(f"gpu-tray: {result.message}. Nothing was saved.", file=sys.stderr)
        return EXIT_FAILED
    added: list[bool] = []
    try:
        edit_config(path, lambda doc: added.append(add_channel(doc, name)))
    except (ConfigError, OSError) as exc:
        store.forget(name)  # half a channel (a URL no config names) helps nobody
        raise Usage(f"{exc}; the URL was not kept") from None
    where = f"added it to {path}" if added and added[0] else f"{path} already lists it"
    print(f"Saved the URL of channel {name} in the system keyring ({backend}); {where}.")
    return 0


def _read_url(args: argparse.Namespace) -> str:
    if args.stdin:
        line = sys.stdin.readline()
        url = line.rstrip("\r\n").strip()
        if not url:
            raise Usage(f"channel add {args.name}: no URL on stdin; nothing was saved")
        return url
    if not sys.stdin.isatty():
        raise Usage(
            f"channel add {args.name}: stdin is not a terminal: "
            "pass --stdin to read the URL from it"
        )
    try:
        url = getpass.getpass(f"Apprise URL for channel {args.name} (not shown): ").strip()
    except EOFError:
        url = ""
    if not url:
        raise Usage(f"channel add {args.name}: empty URL; nothing was saved")
    return url


def _list(args: argparse.Namespace) -> int:
    config = load_for(args)
    if not config.channels:
        print(f"No channels in {config.path}. Add one with `gpu-tray channel add NAME`.")
        return 0
    store, _backend = _keyring()
    if store is None:
        return EXIT_FAILED
    width = max(len(c.name) for c in config.channels)
    for c in config.channels:
        stored = "URL in the keyring" if store.has_url(c.name) else "no URL in the keyring"
        rules = sum(1 for w in config.watch if c.name in w.channels)
        print(f"{c.name:<{width}}  {stored}, used by {rules} rule{'' if rules == 1 else 's'}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from gpu_tray.core.config import ConfigError
    from gpu_tray.core.config_edit import edit_config, remove_channel

    name = args.name
    path = config_path_of(args)
    store, _backend = _keyring()
    if store is None:
        return EXIT_FAILED
    result: list[tuple[bool, int]] = []
    if path.exists():
        try:
            edit_config(path, lambda doc: result.append(remove_channel(doc, name)))
        except (ConfigError, OSError) as exc:
            raise Usage(str(exc)) from None
    in_config, dropped = result[0] if result else (False, 0)
    forgot = store.forget(name)
    if not in_config and not forgot:
        raise Usage(f"no channel named {name!r} in {path} or in the system keyring")
    parts = []
    if forgot:
        parts.append("forgot its URL")
    if in_config:
        parts.append(f"removed it from {path}")
    if dropped:
        parts.append(
            f"removed {dropped} watch rule{'s' if dropped > 1 else ''} that sent only to it"
        )
    print(f"Removed channel {name}: {', '.join(parts)}.")
    return 0


def _test(args: argparse.Namespace) -> int:
    from gpu_tray.channels.deliver import deliver
    from gpu_tray.channels.message import TEST_MESSAGE

    name = args.name
    store, _backend = _keyring()
    if store is None:
        return EXIT_FAILED
    url = store.url(name)
    if url is None:
        print(
            f"gpu-tray: channel {name} has no URL in the system keyring: store one with "
            f"`gpu-tray channel add {name}`",
            file=sys.stderr,
        )
        return EXIT_FAILED
    result = deliver(url, TEST_MESSAGE)
    if not result.ok:
        print(f"gpu-tray: channel {name}: not delivered: {result.reason}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Sent a test message to channel {name}.")
    return 0
