"""`gpu-tray password set|forget HOST`: a host's password in the OS keyring.

The account is `user@host:port` exactly as the SSH source resolves the host
(config.toml, then ~/.ssh/config), so what is stored here is what the next
poll finds. `--key PATH` does the same for a key's passphrase.

The secret is read from the terminal without echo, or from stdin with
`--stdin` (one line). It is never printed, logged or put in a file by us.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from gpu_tray.cli.common import Usage
from gpu_tray.cli.hosts import add_options, host_named
from gpu_tray.credentials.keyring_store import KeyringState, SecretRequest, SecretStore

EXIT_NOT_SAVED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("password", help="store or forget a host's password in the system keyring")
    add_options(p)
    actions = p.add_subparsers(dest="password_command", metavar="ACTION", required=True)
    for name, text in (
        ("set", "store a password (asked without echo, or read from stdin with --stdin)"),
        ("forget", "remove a stored password"),
    ):
        a = actions.add_parser(name, help=text)
        add_options(a)
        a.add_argument("host", metavar="HOST", nargs="?", help="a [[hosts]] name from config.toml")
        a.add_argument(
            "--key", metavar="PATH", help="the passphrase of this private key instead of a password"
        )
        if name == "set":
            a.add_argument(
                "--stdin", action="store_true", help="read the secret from the first line of stdin"
            )


def run(args: argparse.Namespace) -> int:

    if (args.host is None) == (args.key is None):
        raise Usage(f"password {args.password_command}: give a HOST, or --key PATH (not both)")
    request = _request(args)
    store = SecretStore()
    status = store.status()
    if status.state is not KeyringState.OK:
        # This process ends in a moment: a session-only secret would be lost with it.
        print(f"gpu-tray: {status.message}. Nothing was changed.", file=sys.stderr)
        return EXIT_NOT_SAVED
    if args.password_command == "forget":
        if store.forget(request):
            print(f"Forgot {request.what}.")
        else:
            print(f"Nothing to forget: no {request.what.removeprefix('the ')} was stored.")
        return 0
    secret = _read_secret(args, request)
    result = store.set_secret(request, secret)
    if not result.in_keyring:
        print(f"gpu-tray: {result.message}. Nothing was saved.", file=sys.stderr)
        return EXIT_NOT_SAVED
    print(f"Saved {request.what} in the system keyring ({status.backend}).")
    return 0


def _request(args: argparse.Namespace) -> SecretRequest:
    from gpu_tray.sources.ssh.target import TargetError, resolve

    if args.key is not None:
        return SecretRequest.for_passphrase(args.key)
    host = host_named(args, args.host)
    try:
        target = resolve(host)
    except TargetError as exc:
        raise Usage(str(exc)) from None
    return SecretRequest.for_password(target.user, target.hostname, target.port, host.name)


def _read_secret(args: argparse.Namespace, request: SecretRequest) -> str:

    kind = "passphrase" if args.key is not None else "password"
    if args.stdin:
        line = sys.stdin.readline()
        secret = line[:-1] if line.endswith("\n") else line
        secret = secret.removesuffix("\r")
        if not secret:
            raise Usage(f"no {kind} on stdin; nothing was saved")
        return secret
    if not sys.stdin.isatty():
        raise Usage(f"stdin is not a terminal: pass --stdin to read the {kind} from it")
    try:
        what = request.what.removeprefix("the ")
        secret = getpass.getpass(f"{what[:1].upper()}{what[1:]}: ")
    except EOFError:
        secret = ""
    if not secret:
        raise Usage(f"empty {kind}; nothing was saved")
    return secret
