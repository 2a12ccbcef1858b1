"""What the numbers were measured on: machine, versions, and the CPU load of other processes during a run."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import numpy as np

import mindspore as ms


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(path: Path) -> dict | None:
    """Commit of the checkout ``path`` is in, and whether files under ``path`` differ from it (None if no git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--", ".")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def describe(torch_version: str | None, kdiffusion_version: str | None) -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mindspore": ms.__version__,
        "numpy": np.__version__,
        "torch": torch_version,
        "k_diffusion": kdiffusion_version,
        "edm_sampler": package_version("edm_sampler"),
        # the library's code state: results depend on it, and a source checkout may have uncommitted changes
        "edm_sampler_git": git_state(Path(__file__).resolve().parents[1]),
    }


def _busy_cpu_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuLoad:
    """Average cores used by this process and by all *other* processes while the block runs (a noise indicator)."""

    own_cores: float | None = None
    other_cores: float | None = None

    def __enter__(self) -> CpuLoad:
        self._wall, self._busy, self._own = time.perf_counter(), _busy_cpu_s(), sum(os.times()[:2])
        return self

    def __exit__(self, *exc) -> bool:
        wall = max(time.perf_counter() - self._wall, 1e-9)
        busy = _busy_cpu_s()
        own = sum(os.times()[:2]) - self._own
        self.own_cores = own / wall
        if busy is not None and self._busy is not None:
            self.other_cores = max(0.0, (busy - self._busy - own) / wall)
        return False

    def as_dict(self) -> dict:
        return {"own_cores": self.own_cores, "other_cores": self.other_cores}
