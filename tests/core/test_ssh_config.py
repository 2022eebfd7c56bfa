"""ssh_config as OpenSSH 9.2 reads it: exact values, the file and line of each, and the
exact message for what gpu-tray refuses (Match exec, ProxyCommand) or ssh would reject."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.ssh.ssh_config import SshConfig, SshConfigError
from gpu_tray.sources.ssh.ssh_config_lex import split_args, split_line
from gpu_tray.sources.ssh.target import TargetError, load_ssh_config, resolve


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    return home


def write(home: Path, files: dict[str, str]) -> SshConfig:
    for rel, text in files.items():
        path = home / ".ssh" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return SshConfig.from_path(home / ".ssh" / "config")


def show(home: Path, files: dict[str, str], name: str, **toml: object) -> dict[str, object]:
    t = resolve(HostConfig(name, **toml), write(home, files))  # type: ignore[arg-type]
    return {
        "hostname": t.hostname,
        "port": t.port,
        "user": t.user,
        "jumps": [j.hop for j in t.jumps],
        "origins": dict(t.origins),
    }


# -- the words of a line -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("User hal # admin", ("user", ["hal"])),
        ("User hal#x", ("user", ["hal#x"])),
        ("  HostName=GPU1.example", ("hostname", ["GPU1.example"])),
        ("Port = 2222", ("port", ["2222"])),
        ('IdentityFile "~/My Keys/id"', ("identityfile", ["~/My Keys/id"])),
        ("IdentityFile ~/My\\ Keys/id", ("identityfile", ["~/My Keys/id"])),
        ("Host a 'b c' \"d\"", ("host", ["a", "b c", "d"])),
        ('"User" bob', ("user", ["bob"])),
        ("\tUSER\tbob  ", ("user", ["bob"])),
    ],
)
def test_words_of_a_line(line: str, parsed: tuple[str, list[str]]) -> None:
    keyword, rest = split_line(line)  # type: ignore[misc]
    assert (keyword, split_args(rest)) == parsed


@pytest.mark.parametrize("line", ["", "   ", "# just a comment", "\t# indented comment"])
def test_blank_and_comment_lines(line: str) -> None:
    assert split_line(line) is None


# -- Include -------------------------------------------------------------------------------


def test_include_glob_relative_to_dot_ssh_with_origins(home: Path) -> None:
    files = {
        "config": "Include conf.d/*.conf\nHost *\n  User fallback\n",
        "conf.d/10-a.conf": "Host gpu7\n  HostName 10.7.0.7\n  Port 2207\n",
        "conf.d/20-b.conf": "Host gpu7\n  User twenty\n  Port 9999\n",
    }
    ssh = home / ".ssh"
    assert show(home, files, "gpu7") == {
        "hostname": "10.7.0.7",
        "port": 2207,
        "user": "twenty",
        "jumps": [],
        "origins": {
            "hostname": f"{ssh}/conf.d/10-a.conf:2",
            "port": f"{ssh}/conf.d/10-a.conf:3",
            "user": f"{ssh}/conf.d/20-b.conf:2",
        },
    }


def test_include_tilde_absolute_and_nested(home: Path) -> None:
    files = {
        "config": f"Include ~/.ssh/a.conf\nInclude {home}/.ssh/b.conf\n",
        "a.conf": "Include nested/c.conf\n",
        "nested/c.conf": "Host gpu1\n  User from-c\n",
        "b.conf": "Host gpu1\n  Port 2002\n  User from-b\n",
    }
    got = show(home, files, "gpu1")
    assert (got["user"], got["port"]) == ("from-c", 2002)
    assert got["origins"] == {
        "user": f"{home}/.ssh/nested/c.conf:2",
        "port": f"{home}/.ssh/b.conf:2",
    }


def test_include_inside_host_and_match_blocks(home: Path) -> None:
    files = {
        "config": "Host gpu7\n  Include in-host.conf\n  Port 2777\n"
        "Match user bob\n  Include in-match.conf\nHost *\n  User outer\n",
        "in-host.conf": "User inner\nHost gpu8\n  Port 2888\n",
        "in-match.conf": "HostName bob.example\n",
    }
    # In gpu7's block: the included file's lines apply, and its `Host gpu8` cannot end the
    # block for the `Port 2777` after the Include.
    assert show(home, files, "gpu7")["user"] == "inner"
    assert show(home, files, "gpu7")["port"] == 2777
    # Read from an inactive block, the included `Host gpu8` never matches (as in ssh).
    assert (show(home, files, "gpu8")["port"], show(home, files, "gpu8")["user"]) == (22, "outer")
    assert show(home, files, "x", user="bob")["hostname"] == "bob.example"


def test_include_loop_is_an_error_naming_the_line(home: Path) -> None:
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": "\nInclude config\n"}, "gpu1")
    assert str(exc.value) == f"{home}/.ssh/config, line 2: too many nested Includes (a loop?)"


def test_unreadable_include_names_the_include_line(home: Path) -> None:
    (home / ".ssh" / "bad.conf").write_bytes(b"User \xff\xfe\n")
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": "Host *\n  Include bad.conf\n"}, "gpu1")
    assert str(exc.value).startswith(
        f"{home}/.ssh/config, line 2: cannot read {home}/.ssh/bad.conf: 'utf-8' codec"
    )


# -- Match ---------------------------------------------------------------------------------


def test_match_exec_is_refused_with_file_and_line(home: Path) -> None:
    files = {"config": "Host gpu1\n  User bob\n\nMatch host gpu* exec \"nc -z %h 22\"\n  Port 2\n"}
    with pytest.raises(SshConfigError) as exc:
        show(home, files, "gpu1")
    assert str(exc.value) == (
        f"{home}/.ssh/config, line 4: Match exec runs a shell command to decide, and gpu-tray "
        "never runs shell commands; use Match host/user/localuser, or a Host block"
    )
    assert (exc.value.file, exc.value.line) == (f"{home}/.ssh/config", 4)
    # ssh does not run the command when an earlier criterion already failed: neither do we.
    assert show(home, files, "cpu1")["port"] == 22


def test_match_exec_is_a_target_error_for_every_caller(home: Path) -> None:
    write(home, {"config": "Match exec true\n  User x\n"})
    with pytest.raises(TargetError):
        resolve(HostConfig("gpu1"), SshConfig.from_path(home / ".ssh" / "config"))


def test_match_criteria(home: Path) -> None:
    files = {
        "config": "Host short\n  HostName Real.Example.ORG\n"
        "Match originalhost short user alice localuser alice\n  Port 2100\n"
        "Match host *.example.org\n  User via-host\n"
    }
    got = show(home, files, "short")
    assert (got["hostname"], got["port"], got["user"]) == ("real.example.org", 2100, "via-host")


def test_match_final_reads_the_file_again_with_the_final_name(home: Path) -> None:
    files = {
        "config": "Host alias\n  HostName Target.Example\nMatch final\n"
        "Host target.example\n  User second-pass\nMatch canonical all\n  Port 2345\n"
    }
    got = show(home, files, "alias")
    assert (got["hostname"], got["user"], got["port"]) == ("target.example", "second-pass", 2345)
    assert got["origins"]["user"] == f"{home}/.ssh/config:5"


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("host", "Match host needs a value"),
        ("all host x", "'all' cannot be combined with other Match attributes"),
        ("localnetwork 10.0.0.0/8", "unsupported Match attribute 'localnetwork'"),
        ("# nothing", "Match needs at least one attribute"),
    ],
)
def test_bad_match_lines(home: Path, condition: str, message: str) -> None:
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": f"Match {condition}\n"}, "gpu1")
    assert str(exc.value) == f"{home}/.ssh/config, line 1: {message}"


# -- ProxyCommand and ProxyJump ----------------------------------------------------------


def test_proxy_command_is_refused_with_file_and_line(home: Path) -> None:
    files = {"config": "Host gpu1\n  ProxyCommand ssh -W %h:%p bastion\n"}
    with pytest.raises(SshConfigError) as exc:
        show(home, files, "gpu1")
    assert str(exc.value) == (
        f"{home}/.ssh/config, line 2: gpu1 uses ProxyCommand, which runs a shell command, and "
        "gpu-tray never runs shell commands; use ProxyJump instead"
    )


def test_proxy_command_none_and_after_proxy_jump_are_fine(home: Path) -> None:
    files = {
        "config": "Host a\n  ProxyCommand none\nHost b\n  ProxyJump gw\n  ProxyCommand nc %h %p\n"
    }
    assert show(home, files, "a")["jumps"] == []
    assert show(home, files, "b")["jumps"] == ["alice@gw:22"]


def test_proxy_jump_hops_in_order_with_tokens(home: Path) -> None:
    files = {
        "config": "Host gw-*\n  User ops\nHost far\n  ProxyJump outer\nHost outer\n  Port 2022\n"
        "Host gpu*\n  HostName %h.lab\n  ProxyJump far,gw-%h:2200,root@[fe80::1]\n"
    }
    got = show(home, files, "gpu3")
    assert got["jumps"] == [
        "alice@outer:2022",  # far's own ProxyJump: far is the first hop
        "alice@far:22",
        "ops@gw-gpu3.lab:2200",  # %h in ProxyJump is the target's host name
        "root@[fe80::1]:22",
    ]
    assert got["origins"]["proxy_jump"] == f"{home}/.ssh/config:9"


def test_config_toml_proxy_jump_none_wins(home: Path) -> None:
    files = {"config": "Host *\n  ProxyJump bastion\n"}
    assert show(home, files, "gpu1", proxy_jump="none")["jumps"] == []


def test_bad_proxy_jump_names_the_line(home: Path) -> None:
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": "Host gpu1\n  ProxyJump bastion:99999\n"}, "gpu1")
    assert str(exc.value) == (
        f"{home}/.ssh/config, line 2: ProxyJump hop 'bastion:99999' has a bad port"
    )


# -- tokens, ~ and ${VAR} ------------------------------------------------------------------


def test_identity_files_accumulate_with_tokens(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("KEYS", "/srv/keys")
    files = {
        "config": "Host gpu1\n  HostName GPU1.lab\n  User bob\n  Port 2201\n"
        "  IdentityFile ~/.ssh/id_%r@%h:%p\n  IdentityFile ${KEYS}/%n_%u_%%\n"
        "  IdentityFile %d/k_%k\n  IdentityFile ~/.ssh/id_%r@%h:%p\n"
        "Host *\n  IdentityFile ~/.ssh/common\n"
    }
    t = resolve(HostConfig("gpu1"), write(home, files))
    assert t.identity_files == (
        f"{home}/.ssh/id_bob@gpu1.lab:2201",
        "/srv/keys/gpu1_alice_%",
        f"{home}/k_gpu1",
        f"{home}/.ssh/common",
    )  # the repeated line is dropped, as ssh does
    assert [t.origin(f"identity_file:{i}") for i in range(4)] == [
        f"{home}/.ssh/config:5", f"{home}/.ssh/config:6", f"{home}/.ssh/config:7",
        f"{home}/.ssh/config:10",
    ]  # fmt: skip
    assert t.explicit_identities


def test_known_hosts_tokens_and_connection_hash(home: Path) -> None:
    files = {
        "config": "Host gpu1\n  HostKeyAlias gpu-alias\n  UserKnownHostsFile ~/kh/%k %d/kh/%C %L/%l\n"
        "  ConnectTimeout 1m30s\n"
    }
    t = resolve(HostConfig("gpu1"), write(home, files))
    local = socket.gethostname()
    digest = hashlib.sha1(f"{local}gpu122alice".encode()).hexdigest()
    assert t.known_hosts_files == (
        f"{home}/kh/gpu-alias", f"{home}/kh/{digest}", f"{local.split('.')[0]}/{local}",
    )  # fmt: skip
    assert (t.connect_timeout_s, t.host_key_alias) == (90.0, "gpu-alias")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("IdentityFile ~/.ssh/%z", "unknown token %z in '~/.ssh/%z'"),
        ("HostName %r.lab", "unknown token %r in '%r.lab'"),
        ("IdentityFile ${GPU_TRAY_UNSET_VAR}/k", "environment variable ${GPU_TRAY_UNSET_VAR} "
         "has no value in '${GPU_TRAY_UNSET_VAR}/k'"),
        ("Port 70000", "bad port '70000'"),
        ("Port", "no value after 'port'"),
        ("User bob alice", "'user' takes one value, not 2"),
        ('User "bob', "invalid quotes"),
        ("ConnectTimeout 5x", "invalid time value '5x'"),
    ],
)  # fmt: skip
def test_bad_values_name_file_and_line(home: Path, line: str, message: str) -> None:
    os.environ.pop("GPU_TRAY_UNSET_VAR", None)
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": f"# gpu box\nHost gpu1\n  {line}\n"}, "gpu1")
    assert str(exc.value) == f"{home}/.ssh/config, line 3: {message}"


def test_user_is_not_token_expanded_in_openssh_9_2(home: Path) -> None:
    # ssh_config(5) of OpenSSH 9.2 lists no tokens for User (10.0 added them).
    assert show(home, {"config": "Host gpu1\n  User %u\n"}, "gpu1")["user"] == "%u"


# -- the host list for "Import from ~/.ssh/config" ----------------------------------------


def test_host_names_follow_includes_in_place(home: Path) -> None:
    config = write(
        home,
        {
            "config": "Host first\nInclude conf.d/*\nHost last * !neg\nHost = \"quoted\"  # c\n",
            "conf.d/a": "Host gpu7 gpu8\nHost first\n",
            "conf.d/b": "Host gpu9\n",
        },
    )
    assert config.host_names() == ["first", "gpu7", "gpu8", "gpu9", "last", "quoted"]


def test_only_regular_files_are_read(home: Path) -> None:
    os.mkfifo(home / ".ssh" / "fifo.conf")  # reading it would wait forever for a writer
    (home / ".ssh" / "dir.conf").mkdir()
    files = {"config": "Include fifo.conf dir.conf /dev/null\nHost gpu1\n  User ok\n"}
    assert show(home, files, "gpu1")["user"] == "ok"


def test_a_huge_include_is_refused(home: Path) -> None:
    (home / ".ssh" / "huge.conf").write_text("# padding\n" * 120_000)
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": "Include huge.conf\n"}, "gpu1")
    assert str(exc.value) == (
        f"{home}/.ssh/config, line 1: cannot read {home}/.ssh/huge.conf: larger than 1024 KiB"
    )


def test_proxy_jump_with_a_space_is_refused_as_ssh_does(home: Path) -> None:
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": "Host gpu1\n  ProxyJump a, b\n"}, "gpu1")
    assert str(exc.value) == (
        f"{home}/.ssh/config, line 2: ProxyJump hop ' b' is not [user@]host[:port]"
    )


def test_system_wide_file_comes_after_the_users(home: Path, tmp_path: Path) -> None:
    system = tmp_path / "etc_ssh_config"
    system.write_text("Host *\n  User from-system\n  Port 2022\n")
    write(home, {"config": "Host gpu1\n  User mine\n"})
    config = SshConfig(path=home / ".ssh" / "config", system_path=system)
    t = resolve(HostConfig("gpu1"), config)
    assert (t.user, t.port) == ("mine", 2022)
    assert dict(t.origins) == {"user": f"{home}/.ssh/config:2", "port": f"{system}:3"}


def test_system_wide_file_may_not_include_from_home(home: Path, tmp_path: Path) -> None:
    system = tmp_path / "etc_ssh_config"
    system.write_text("Include ~/.ssh/x\n")
    config = SshConfig(path=home / ".ssh" / "config", system_path=system)
    with pytest.raises(SshConfigError) as exc:
        resolve(HostConfig("gpu1"), config)
    assert str(exc.value) == (
        f"{system}, line 1: Include '~/.ssh/x': ~ is not allowed in the system-wide ssh_config"
    )


def test_default_config_is_the_users_then_the_system_one(home: Path) -> None:
    config = load_ssh_config()
    assert (config.path, config.system_path) == (home / ".ssh" / "config", Path("/etc/ssh/ssh_config"))
    assert load_ssh_config(home / "other").system_path is None  # like ssh -F


def test_include_from_an_unknown_users_home_names_the_line(home: Path) -> None:
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": "Include ~no-such-user-here/x\n"}, "gpu1")
    assert str(exc.value) == (
        f"{home}/.ssh/config, line 1: no such user 'no-such-user-here' in "
        "'~no-such-user-here/x'"
    )


def test_a_nul_byte_ends_the_line_as_in_ssh(home: Path) -> None:
    # Found by the fuzzer: ssh reads lines as C strings; Python must not raise on them.
    files = {"config": "Host gpu1\n  Port 22\x0033\n  User bob\x00 extra words\n"}
    got = show(home, files, "gpu1")
    assert (got["port"], got["user"]) == (22, "bob")


def test_a_port_that_is_not_a_number_or_a_service(home: Path) -> None:
    with pytest.raises(SshConfigError) as exc:
        show(home, {"config": "Host gpu1\n  Port x\n"}, "gpu1")
    assert str(exc.value) == f"{home}/.ssh/config, line 2: bad port 'x'"
