"""A real Slurm on loopback: munged, slurmctld and one slurmd per node, fake GPUs.

The GPUs are gres.conf `File=` entries pointing at symlinks to /dev/null:
Slurm tracks and hands them out like real devices. Everything lives in one
temporary folder with its own ports, so parallel test runs do not meet.
Recipe: ../shared/TESTING.md, "Cluster engines".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness.procs import HarnessError, free_port, stop_process, tail, wait_for

BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "squeue", "srun", "sbatch", "scancel")


@dataclass(frozen=True)
class FakeNode:
    name: str
    gpus: int
    gpu_type: str | None = "fake"  # None: untyped GRES (Gres=gpu:N)
    cpus: int = 8


class SlurmCluster:
    def __init__(self, root: Path, nodes: tuple[FakeNode, ...]) -> None:
        self.root = root
        self.nodes = nodes
        self.conf = root / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.sock"
        self._procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            # Client commands read the socket from slurm.conf's AuthInfo; keep a
            # stray user config out of the way.
            "SLURM_TIME_FORMAT": "standard",
        }

    # -- setup -----------------------------------------------------------------------------

    def _write_config(self) -> None:
        r = self.root
        for sub in ("munge", "state", "spool", "log", "dev", "work"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        # munged checks that its socket folder is not writable by others but
        # reachable by everyone (clients run as other users).
        os.chmod(r / "munge", 0o755)
        os.chmod(r, 0o755)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        host = socket.gethostname().split(".")[0]
        ctld_port = free_port()
        lines = [
            "ClusterName=graytray",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"AuthInfo=socket={self.munge_socket}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}/%n",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'spool'}/slurmd-%n.pid",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log'}/slurmd-%n.log",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "GresTypes=gpu",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "ProctrackType=proctrack/pgid",
            "TaskPlugin=task/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "CommunicationParameters=NoInAddrAny",
            "SlurmdParameters=config_overrides",
            "SchedulerType=sched/builtin",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "KillWait=1",
            "MinJobAge=2",
            # Clients give up on a dead controller in seconds, not half a minute.
            "MessageTimeout=3",
            "TCPTimeout=1",
        ]
        gres = ["AutoDetect=off"]
        for node in self.nodes:
            port = free_port()
            typed = f":{node.gpu_type}" if node.gpu_type else ""
            lines.append(
                f"NodeName={node.name} NodeAddr=127.0.0.1 NodeHostname={host} Port={port} "
                f"CPUs={node.cpus} RealMemory=1000 Gres=gpu{typed}:{node.gpus} State=UNKNOWN"
            )
            (r / "spool" / node.name).mkdir(exist_ok=True)
            devdir = r / "dev" / node.name
            devdir.mkdir(exist_ok=True)
            for i in range(node.gpus):
                link = devdir / f"nvidia{i}"
                if not link.exists():
                    link.symlink_to("/dev/null")
            files = f"{devdir}/nvidia[0-{node.gpus - 1}]" if node.gpus > 1 else f"{devdir}/nvidia0"
            type_part = f" Type={node.gpu_type}" if node.gpu_type else ""
            gres.append(f"NodeName={node.name} Name=gpu{type_part} File={files}")
        names = ",".join(n.name for n in self.nodes)
        lines.append(f"PartitionName=debug Nodes={names} Default=YES MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(lines) + "\n")
        (r / "gres.conf").write_text("\n".join(gres) + "\n")

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        out = open(log, "ab")  # noqa: SIM115 - the daemon owns it until it exits
        proc = subprocess.Popen(
            argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=self.root / "work"
        )
        out.close()
        self._procs.append(proc)
        return proc

    def start(self, timeout_s: float = 30.0) -> SlurmCluster:
        self._write_config()
        r = self.root
        munged = self._spawn(
            [
                "munged",
                "-F",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={r / 'munge' / 'munge.key'}",
                f"--pid-file={r / 'munge' / 'munged.pid'}",
                f"--log-file={r / 'log' / 'munged.log'}",
                f"--seed-file={r / 'munge' / 'munged.seed'}",
            ],
            r / "log" / "munged.out",
        )
        wait_for(
            lambda: self.munge_socket.exists() or munged.poll() is not None,
            timeout_s,
            "munged's socket",
            on_timeout=lambda: tail(r / "log" / "munged.log"),
        )
        if munged.poll() is not None:
            raise HarnessError("munged exited:\n" + tail(r / "log" / "munged.out"))
        # slurmctld first: a slurmd that starts earlier retries only every few minutes.
        self._spawn(
            ["slurmctld", "-D", "-c", "-i", "-f", str(self.conf)], r / "log" / "slurmctld.out"
        )
        wait_for(
            lambda: self.run(["scontrol", "ping"], check=False).stdout.find("UP") >= 0,
            timeout_s,
            "slurmctld to answer scontrol ping",
            on_timeout=lambda: (
                tail(r / "log" / "slurmctld.log") + tail(r / "log" / "slurmctld.out")
            ),
        )
        for node in self.nodes:
            self._spawn(
                ["slurmd", "-D", "-f", str(self.conf), "-N", node.name],
                r / "log" / f"slurmd-{node.name}.out",
            )
        wait_for(
            self._all_idle,
            timeout_s,
            "every slurmd to register as idle",
            on_timeout=lambda: (
                self.run(["sinfo", "-N", "-l"], check=False).stdout
                + tail(r / "log" / "slurmctld.log")
            ),
        )
        return self

    def _all_idle(self) -> bool:
        out = self.run(["sinfo", "-h", "-N", "-o", "%N %t"], check=False).stdout.split()
        states = dict(zip(out[::2], out[1::2], strict=False))
        return all(states.get(n.name) == "idle" for n in self.nodes)

    # -- use -------------------------------------------------------------------------------

    def run(
        self, argv: list[str], check: bool = True, timeout_s: float = 20.0
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=self.root / "work",
        )
        if check and proc.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def submit(self, *args: str) -> str:
        """sbatch a sleeping job; returns its id once it runs."""
        out = self.run(["sbatch", "--parsable", *args, "--wrap", "sleep 300"]).stdout.strip()
        job = out.split(";")[0]
        wait_for(
            lambda: (
                self.run(["squeue", "-h", "-j", job, "-o", "%T"], check=False).stdout.strip()
                == "RUNNING"
            ),
            20,
            f"job {job} to run",
        )
        return job

    def srun_background(self, *args: str) -> subprocess.Popen[bytes]:
        """`srun ARGS sleep 300` left running; the caller scancels it."""
        proc = subprocess.Popen(
            ["srun", *args, "sleep", "300"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.root / "work",
        )
        self._procs.append(proc)
        return proc

    def gres_used(self, node: str) -> str:
        out = self.run(["sinfo", "-h", "-n", node, "-N", "-O", "GresUsed:100"]).stdout
        return out.strip()

    def stop(self) -> None:
        # srun clients first, then the daemons in reverse start order.
        for proc in reversed(self._procs):
            stop_process(proc)


@contextlib.contextmanager
def running_cluster(nodes: tuple[FakeNode, ...], prefix: str) -> Iterator[SlurmCluster]:
    """A started cluster in a fresh folder, stopped and removed afterwards. Not under
    pytest's 0700 temp folder: the SSH test user runs sinfo against it."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = SlurmCluster(root, nodes)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
