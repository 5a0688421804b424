"""A one-node Slurm cluster on localhost for tests (Debian's slurmctld/slurmd + munge).

``SlurmCluster.start(folder)`` installs the Debian packages if missing (needs root
and apt), writes a minimal slurm.conf into ``folder`` (no cgroups, no accounting,
free ports), starts munged (if no munge daemon answers), slurmctld and slurmd,
and waits until the node is idle. ``stop()`` kills what it started. Every wait
is bounded; failures raise ``SlurmUnavailable`` with the daemon log tails.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]


class SlurmUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


class SlurmCluster:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.conf = self.folder / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self._munge_pid = None  # munged started by this fixture (else left alone)

    # ------------------------------------------------------------ set-up
    @staticmethod
    def ensure_installed():
        if all(shutil.which(x) or Path(f"/usr/sbin/{x}").exists() for x in ("slurmctld", "slurmd", "sbatch", "munged")):
            return
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise SlurmUnavailable("Slurm is not installed and this is not root with apt-get: cannot install it")
        r = _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
                 env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), timeout=600)
        if r.returncode != 0:
            _run(["apt-get", "update", "-qq"], timeout=600)
            r = _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
                     env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), timeout=600)
        if r.returncode != 0:
            raise SlurmUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {r.stderr[-800:]}")

    def write_conf(self):
        f = self.folder
        for d in ("state", "spool"):
            (f / d).mkdir(parents=True, exist_ok=True)
        ncpu = os.cpu_count() or 1
        self.conf.write_text(f"""ClusterName=spiatest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={f}/state
SlurmdSpoolDir={f}/spool
SlurmctldPidFile={f}/slurmctld.pid
SlurmdPidFile={f}/slurmd.pid
SlurmctldLogFile={f}/slurmctld.log
SlurmdLogFile={f}/slurmd.log
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=localhost CPUs={ncpu} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
""")

    def _munge_ok(self) -> bool:
        try:
            enc = _run(["munge", "-n"], timeout=10)
            return enc.returncode == 0 and _run(["unmunge"], input=enc.stdout, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False

    def start(self):
        if os.geteuid() != 0:
            raise SlurmUnavailable("the test cluster runs its daemons as root; this is not root")
        self.ensure_installed()
        self.write_conf()
        if not self._munge_ok():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            key = Path("/etc/munge/munge.key")
            if not key.exists():
                _run(["mungekey", "--create"], timeout=30)
                shutil.chown(key, "munge", "munge")
            r = _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], timeout=30)
            pidfile = Path("/run/munge/munged.pid")
            if pidfile.exists():
                self._munge_pid = int(pidfile.read_text().split()[0])
            if not self._munge_ok():
                raise SlurmUnavailable(f"munged did not start: {r.stderr[-500:]}")
        for cmd in (["/usr/sbin/slurmctld", "-c"], ["/usr/sbin/slurmd", "-N", "localhost"]):
            r = _run(cmd, env=self.env, timeout=30)
            if r.returncode != 0:
                raise SlurmUnavailable(f"{cmd[0]} failed: {r.stderr[-500:]}\n{self.logs()}")
        deadline = time.time() + 60
        while time.time() < deadline:
            out = _run(["sinfo", "-h", "-o", "%t"], env=self.env, timeout=10).stdout.strip()
            if out.startswith("idle"):
                return self
            time.sleep(0.5)
        raise SlurmUnavailable(f"node never became idle (sinfo: {out!r})\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            p = self.folder / name
            if p.exists():
                parts.append(f"--- {name}\n" + "\n".join(p.read_text().splitlines()[-15:]))
        return "\n".join(parts)

    # ------------------------------------------------------------ use
    def sbatch(self, script, *args, env_extra=None, cwd=None) -> str:
        env = dict(self.env, **(env_extra or {}))
        r = _run(["sbatch", "--parsable", *map(str, args), str(script)], env=env, cwd=cwd, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"sbatch failed: {r.stderr}")
        return r.stdout.strip().split(";")[0]

    def wait(self, job_id: str, timeout: float = 120.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            q = _run(["squeue", "-h", "-j", job_id], env=self.env, timeout=10).stdout.strip()
            if not q:
                return
            time.sleep(0.5)
        _run(["scancel", job_id], env=self.env, timeout=10)
        raise TimeoutError(f"Slurm job {job_id} still queued/running after {timeout} s\n{self.logs()}")

    # ------------------------------------------------------------ tear-down
    def stop(self):
        pids = []
        for name in ("slurmd.pid", "slurmctld.pid"):
            p = self.folder / name
            if p.exists():
                try:
                    pid = int(p.read_text().strip())
                    os.kill(pid, signal.SIGTERM)
                    pids.append(pid)
                except (ValueError, ProcessLookupError, PermissionError):
                    pass
        deadline = time.time() + 15
        while pids and time.time() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists()]
            time.sleep(0.2)
        for pid in pids:                      # still there: force
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._munge_pid is not None:          # only the munged this fixture started, by pid
            try:
                os.kill(self._munge_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self._munge_pid = None
