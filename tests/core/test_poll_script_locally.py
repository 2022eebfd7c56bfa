"""The constant poll script run by a local `sh`, with the fake nvidia-smi on PATH: the
PID list that reaches `ps` holds only digits, and owners come back whole."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gpu_tray.core.models import HostState
from gpu_tray.core.settings import HostConfig
from gpu_tray.sources.ssh.nvsmi import (
    FALLBACK_DIRS,
    GPU_FIELDS_LEGACY,
    MARK,
    MSG_MISSING,
    POLL_SCRIPT,
    parse_poll_output,
    poll_input,
)
from tests.harness.fake_nvidia_smi import __file__ as FAKE

NVSMI = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-smi"
GPU = NVSMI / "query-gpu_H100-80GB-HBM3_linux_drv590.48.01_load_allfields_header.csv"
APPS = NVSMI / "query-compute-apps_H100-80GB-HBM3_linux_drv590.48.01_load.csv"


def install_fake(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FAKE, folder / "nvidia-smi")
    (folder / "nvidia-smi").chmod(0o755)
    return folder / "nvidia-smi"


def run_script(
    tmp_path: Path,
    scenario: dict,
    stdin: bytes = b"",
    on_path: bool = True,
    prefix: tuple[str, ...] = (),
) -> bytes:
    bin_dir = tmp_path / "bin"
    if on_path:
        install_fake(bin_dir)
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "GPU_TRAY_FAKE_NVSMI": str(tmp_path / "scenario.json"),
    }
    return subprocess.run(
        [*prefix, "sh", "-c", POLL_SCRIPT],
        env=env,
        input=stdin,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout


def section(out: bytes, name: str) -> list[str]:
    lines = out.decode().splitlines()
    start = lines.index(f"{MARK}{name}") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(MARK))
    return lines[start:end]


def test_owners_of_visible_pids_only(tmp_path: Path) -> None:
    me = os.getpid()
    out = run_script(
        tmp_path,
        {"gpus": [{"csv": str(GPU)}], "apps": {"csv": str(APPS), "pids": [me, 999_999_999]}},
    )
    assert [line.split() for line in section(out, "owners")] == [[str(me), getpass.getuser()]]
    result = parse_poll_output(out)
    assert [(p.pid, p.user) for p in result.gpus[0].processes] == [
        (me, getpass.getuser()),
        (999_999_999, None),
    ]


def test_an_idle_host_runs_no_ps(tmp_path: Path) -> None:
    out = run_script(tmp_path, {"gpus": [{"csv": str(GPU)}]})
    assert section(out, "owners") == []
    assert parse_poll_output(out).gpus[0].processes == ()


# -- where nvidia-smi is (issue 11): PATH, the usual folders, or the host's nvidia_smi ------


def a_real_nvidia_smi_is_installed() -> bool:
    return any(Path(d, "nvidia-smi").exists() for d in FALLBACK_DIRS)


def test_poll_input_is_key_tab_value_lines() -> None:
    host = HostConfig("h", nvidia_smi="/opt/my tools/nvidia-smi")
    assert poll_input(host) == b"nvidia_smi\t/opt/my tools/nvidia-smi\n"
    assert poll_input(HostConfig("h")) == b""
    # A value that could forge a second key line never leaves (config refuses it too).
    assert poll_input(HostConfig("h", nvidia_smi="/x\nnvidia_smi\t/evil")) == b""


def test_the_script_looks_in_the_usual_folders() -> None:
    assert FALLBACK_DIRS == ("/usr/bin", "/usr/local/nvidia/bin", "/usr/lib/wsl/lib")
    # After the PATH, in this order; walked by the shell itself (no fork).
    assert 'q="$PATH:/usr/bin:/usr/local/nvidia/bin:/usr/lib/wsl/lib"' in POLL_SCRIPT
    assert "command -v" not in POLL_SCRIPT


def test_a_path_entry_with_spaces_and_a_glob_is_searched_as_written(tmp_path: Path) -> None:
    odd = tmp_path / "my tools [x] *"
    install_fake(odd)
    (tmp_path / "scenario.json").write_text(json.dumps({"gpus": [{"csv": str(GPU)}]}))
    env = {
        "PATH": f"/nonexistent::{odd}:/usr/bin:/bin",
        "GPU_TRAY_FAKE_NVSMI": str(tmp_path / "scenario.json"),
    }
    out = subprocess.run(
        ["sh", "-c", POLL_SCRIPT], env=env, input=b"", capture_output=True, check=True, timeout=30
    ).stdout
    assert parse_poll_output(out).state is HostState.OK


# A folder name a shell would act on if it were ever parsed: spaces, both quotes, a
# command substitution, a backtick, a semicolon, a glob.
STRANGE = "we ird 'q\" $(touch PWNED) `touch PWNED2`; *"


def test_a_configured_path_is_used_literally(tmp_path: Path) -> None:
    fake = install_fake(tmp_path / STRANGE / "bin")
    # A broken nvidia-smi on PATH shows that the configured one wins.
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "nvidia-smi").write_text("#!/bin/sh\necho wrong one\nexit 9\n")
    (broken / "nvidia-smi").chmod(0o755)
    out = run_script(
        tmp_path,
        {"gpus": [{"csv": str(GPU)}]},
        stdin=poll_input(HostConfig("h", nvidia_smi=str(fake))),
        on_path=False,
    )
    result = parse_poll_output(out)
    assert (result.state, result.message) == (HostState.OK, None)
    assert [g.name for g in result.gpus] == ["NVIDIA H100 80GB HBM3"]
    assert not list(tmp_path.rglob("PWNED*"))
    assert not list(Path.cwd().glob("PWNED*"))


def test_a_configured_path_that_is_not_there_is_missing(tmp_path: Path) -> None:
    # Even with nvidia-smi on PATH: the user said where it is, and is told it is not.
    out = run_script(
        tmp_path,
        {"gpus": [{"csv": str(GPU)}]},
        stdin=poll_input(HostConfig("h", nvidia_smi=str(tmp_path / "nope" / "nvidia-smi"))),
    )
    result = parse_poll_output(out)
    assert (result.state, result.message) == (HostState.NVIDIA_SMI_MISSING, MSG_MISSING)


def test_unknown_keys_and_stray_lines_are_ignored(tmp_path: Path) -> None:
    fake = install_fake(tmp_path / "opt")
    stdin = (
        b"disk\t/scratch\n"
        b"no tab on this line\n"
        b"nvidia_smi\n"
        b"future_key\tvalue\twith\ttabs\n"
        + f"nvidia_smi\t{fake}".encode()  # the last line without its newline
    )
    out = run_script(tmp_path, {"gpus": [{"csv": str(GPU)}]}, stdin=stdin, on_path=False)
    assert parse_poll_output(out).state is HostState.OK


def test_missing_everywhere(tmp_path: Path) -> None:
    if a_real_nvidia_smi_is_installed():
        pytest.skip("this machine has a real nvidia-smi in one of the usual folders")
    out = run_script(tmp_path, {"gpus": [{"csv": str(GPU)}]}, on_path=False)
    sections = [line for line in out.decode().splitlines() if line.startswith(MARK)]
    assert sections == [f"{MARK}health", f"{MARK}disks", f"{MARK}missing"]  # health first
    assert out.endswith(f"{MARK}missing\n".encode())
    result = parse_poll_output(out)
    assert (result.state, result.message) == (
        HostState.NVIDIA_SMI_MISSING,
        "nvidia-smi was not found on the remote PATH",
    )
    assert result.health is not None and result.health.cpus == os.cpu_count()


def test_found_in_usr_local_nvidia_bin_when_not_on_path(tmp_path: Path) -> None:
    """The NVIDIA container toolkit's folder, which a non-interactive PATH lacks. The
    real folder is made inside a private mount namespace, so nothing on this machine
    changes."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private mount namespace (CI runs as root)")
    install_fake(tmp_path / "staged")
    setup = (
        "mount -t tmpfs gpu-tray-test /usr/local && mkdir -p /usr/local/nvidia/bin && "
        f"cp {tmp_path / 'staged' / 'nvidia-smi'} /usr/local/nvidia/bin/ && "
        'exec "$@"'
    )
    out = run_script(
        tmp_path,
        {"gpus": [{"csv": str(GPU)}]},
        on_path=False,
        prefix=("unshare", "--mount", "sh", "-c", setup, "setup"),
    )
    result = parse_poll_output(out)
    assert (result.state, [g.index for g in result.gpus]) == (HostState.OK, [0])


def test_pre_mig_driver_is_asked_again_without_the_mig_field(tmp_path: Path) -> None:
    # Drivers before 450 exit 2, with the message on stdout, on an unknown field.
    out = run_script(tmp_path, {"gpus": [{"csv": str(GPU)}], "legacy": True})
    assert f"{MARK}gpus rc=0 fields={GPU_FIELDS_LEGACY}".encode() in out
    result = parse_poll_output(out)
    assert (result.state, result.gpus[0].mig_enabled) == (HostState.OK, False)
    assert result.gpus[0].memory_total_mib == 81559


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.",
            9,
        ),
        ("No supported GPUs were found", 255),
        ('Field "mig.mode.current" is not a valid field to query.', 2),
    ],
)
def test_errors_printed_on_stdout_reach_the_message(tmp_path: Path, text: str, code: int) -> None:
    out = run_script(tmp_path, {"error": {"text": text, "exit": code}})
    result = parse_poll_output(out)
    assert (result.state, result.message) == (
        HostState.NVIDIA_SMI_ERROR,
        f"nvidia-smi failed (exit {code}): {text}",
    )
