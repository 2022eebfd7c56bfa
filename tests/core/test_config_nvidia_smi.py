"""`nvidia_smi = "/path"` in [[hosts]]: validated with the file, key and line, and kept
by every writer (config_edit, the host form)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_tray.core.config import ConfigError, parse_config
from gpu_tray.core.config_edit import add_host, edit_config, replace_host
from gpu_tray.core.host_form import HostForm, check_form, form_of
from gpu_tray.core.settings import HostConfig

P = Path("/cfg/config.toml")


def test_a_host_may_say_where_nvidia_smi_is() -> None:
    text = '[[hosts]]\nname = "spark"\nnvidia_smi = "/usr/local/nvidia/bin/nvidia-smi"\n'
    [host] = parse_config(text, P).hosts
    assert host == HostConfig(name="spark", nvidia_smi="/usr/local/nvidia/bin/nvidia-smi")
    assert parse_config('[[hosts]]\nname = "a"\n', P).hosts[0].nvidia_smi is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            '"nvidia-smi"',
            "must be an absolute path on the host, such as "
            "'/usr/local/nvidia/bin/nvidia-smi', got 'nvidia-smi'",
        ),
        (
            '"~/bin/nvidia-smi"',
            "must be an absolute path on the host, such as "
            "'/usr/local/nvidia/bin/nvidia-smi', got '~/bin/nvidia-smi'",
        ),
        (
            '"/usr/local/nvidia/bin/"',
            "must be the path of the program itself, not of a folder, got '/usr/local/nvidia/bin/'",
        ),
        (
            '"/opt/x\\tnvidia-smi"',
            "'/opt/x\\tnvidia-smi' has a control character (a tab or a line break) in it",
        ),
        ('""', 'must be a non-empty string, got ""'),
        ("5", "must be a non-empty string, got 5"),
    ],
)
def test_a_bad_path_names_file_key_and_line(value: str, problem: str) -> None:
    text = f'poll_interval_s = 5\n\n[[hosts]]\nname = "a"\n\n[[hosts]]\nname = "b"\nnvidia_smi = {value}\n'
    with pytest.raises(ConfigError) as err:
        parse_config(text, P)
    assert str(err.value) == f"/cfg/config.toml, line 8: hosts[1].nvidia_smi: {problem}"


def test_config_edit_writes_and_keeps_it(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('# mine\n[[hosts]]\nname = "a"  # the DGX Spark\n')
    config = edit_config(
        cfg, lambda doc: replace_host(doc, "a", HostConfig("a", nvidia_smi="/opt/n v/nvidia-smi"))
    )
    assert config.hosts[0].nvidia_smi == "/opt/n v/nvidia-smi"
    assert cfg.read_text() == (
        '# mine\n[[hosts]]\nname = "a"  # the DGX Spark\nnvidia_smi = "/opt/n v/nvidia-smi"\n'
    )
    config = edit_config(cfg, lambda doc: add_host(doc, HostConfig("b", port=2222)))
    assert [h.nvidia_smi for h in config.hosts] == ["/opt/n v/nvidia-smi", None]


def test_the_host_form_round_trips_it_and_refuses_a_relative_path() -> None:
    host = HostConfig("a", nvidia_smi="/usr/lib/wsl/lib/nvidia-smi")
    form = form_of(host)
    assert form.nvidia_smi == "/usr/lib/wsl/lib/nvidia-smi"
    assert check_form(form) == (host, {})
    assert check_form(HostForm(name="a", nvidia_smi="  ")) == (HostConfig("a"), {})
    assert check_form(HostForm(name="a", nvidia_smi="nvidia-smi")) == (
        None,
        {
            "nvidia_smi": "must be an absolute path on the host, such as "
            "'/usr/local/nvidia/bin/nvidia-smi', got 'nvidia-smi'"
        },
    )
