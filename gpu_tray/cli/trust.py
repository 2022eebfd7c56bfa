"""`gpu-tray trust HOST`: show the key a host offers, ask, and remember it.

Like ssh's first-connection question, with the SHA256 fingerprint written the
way `ssh-keygen -lf` prints it. The key goes to gpu-tray's own known_hosts
(never to ~/.ssh/known_hosts). A key that differs from a trusted one is
refused: the old line must be removed by hand, after checking.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from gpu_tray.cli.common import Usage
from gpu_tray.cli.hosts import add_options, host_named
from gpu_tray.core.models import HostKeyInfo

EXIT_NOT_TRUSTED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trust", help="show a host's key fingerprint and trust it")
    add_options(p)
    p.add_argument("host", metavar="HOST", help="a [[hosts]] name from config.toml")
    p.add_argument(
        "--fingerprint",
        metavar="SHA256:...",
        help="trust without asking if the host offers exactly this key (for scripts)",
    )


def run(args: argparse.Namespace) -> int:
    from gpu_tray.credentials.keyring_store import default_store
    from gpu_tray.sources.ssh.host_keys import KnownHosts, Verdict, app_known_hosts_path, trust
    from gpu_tray.sources.ssh.session import SshFailure, SshSession
    from gpu_tray.sources.ssh.target import TargetError, resolve

    host = host_named(args, args.host)
    try:
        target = resolve(host)
    except TargetError as exc:
        raise Usage(str(exc)) from None
    session = SshSession(host, default_store())  # jump hosts may need a password
    try:
        info = session.offered_host_key()
    except SshFailure as failure:
        print(f"gpu-tray: {host.name}: {failure.message}", file=sys.stderr)
        return EXIT_NOT_TRUSTED
    finally:
        session.close()
    known = KnownHosts([Path(p) for p in target.known_hosts_files] or None)
    verdict = known.check(info.host_id, _pkey(info)).verdict
    where = _where(host.name, info.host_id)
    if verdict is Verdict.TRUSTED:
        print(f"The host key of {where} is already trusted: {info.key_type} {info.fingerprint}.")
        return 0
    if verdict is Verdict.REVOKED:
        print(
            f"gpu-tray: the host key of {where} ({info.key_type} {info.fingerprint}) is marked "
            f"@revoked in {info.known_file}, line {info.known_line}: refusing to trust it.",
            file=sys.stderr,
        )
        return EXIT_NOT_TRUSTED
    if verdict is Verdict.CHANGED:
        print(changed_key_text(host.name, info), file=sys.stderr)
        return EXIT_NOT_TRUSTED
    app_file = app_known_hosts_path()
    if args.fingerprint is not None:
        if args.fingerprint != info.fingerprint:
            print(
                f"gpu-tray: {where} offers {info.key_type} {info.fingerprint}, "
                f"not {args.fingerprint}: nothing was saved.",
                file=sys.stderr,
            )
            return EXIT_NOT_TRUSTED
    else:
        print(f"The authenticity of host '{where}' can't be established.")
        print(f"{info.key_type} key fingerprint is {info.fingerprint}.")
        answer = _ask(f"Trust this key and remember it in {app_file}? [y/N] ")
        if answer not in ("y", "yes"):
            print("Not trusted: nothing was saved.")
            return EXIT_NOT_TRUSTED
    path = trust(info, app_file)
    print(f"Trusted {info.host_id} ({info.key_type} {info.fingerprint}): saved in {path}.")
    return 0


def changed_key_text(name: str, info: HostKeyInfo) -> str:
    where = _where(name, info.host_id)
    return (
        f"gpu-tray: the host key of {where} has CHANGED: refusing to trust it.\n"
        f"  offered now: {info.key_type} {info.fingerprint}\n"
        f"  trusted:     {info.known_fingerprint} ({info.known_file}, line {info.known_line})\n"
        "Someone may be intercepting the connection, or the host was reinstalled. Ask its "
        "administrator for the new fingerprint; if it matches, remove line "
        f"{info.known_line} of {info.known_file} "
        f"(ssh-keygen -R '{info.host_id}' -f {info.known_file}) "
        f"and run `gpu-tray trust {name}` again."
    )


def _where(name: str, host_id: str) -> str:
    return name if name == host_id else f"{name} ({host_id})"


def _pkey(info: HostKeyInfo):  # -> paramiko.PKey
    import paramiko

    return paramiko.PKey.from_type_string(info.key_type, base64.b64decode(info.key_base64))


def _ask(prompt: str) -> str:
    print(prompt, end="", flush=True)
    line = sys.stdin.readline()
    return line.strip().lower()
