"""How the benchmarks measure a run: a child process's wall time, CPU time, disk reads and
writes and the peak RSS of its whole process tree (dbt runs as a grandchild); what the rest
of the machine did meanwhile; and the machine it ran on."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from pathlib import Path

import psutil

from collectwatch.config import Settings

# How often the process tree's memory is sampled: a shorter peak can be missed.
SAMPLE_S = 0.05


# getrusage counts block I/O in units of 512 bytes.
BLOCK_BYTES = 512
# The kernel's pressure stall information for I/O (Linux 4.20+, CONFIG_PSI).
IO_PRESSURE = Path("/proc/pressure/io")


def timed(command: list[str], env: dict) -> dict:
    """Run ``command``; wall time, CPU time (user + system of the child and every process
    it waited for), what that tree read from and wrote to the disk (page-cache hits are
    not reads), the process tree's peak RSS, and what the machine did beside it
    (``beside``)."""
    started = time.perf_counter()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before, pressure_before = psutil.cpu_times(), io_pressure()
    process = psutil.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - started
    stdout, stderr = process.communicate()
    machine_after, pressure_after = psutil.cpu_times(), io_pressure()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(
            f"{command} exited {process.returncode}:\n{stdout.decode()}\n{stderr.decode()}"
        )
    cpu = (usage.ru_utime + usage.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak / 1024**2),
        "disk": {
            "read_mb": _mb((usage.ru_inblock - usage_before.ru_inblock) * BLOCK_BYTES),
            "written_mb": _mb((usage.ru_oublock - usage_before.ru_oublock) * BLOCK_BYTES),
        },
        "beside": beside(machine_before, machine_after, cpu)
        | stalled_on_io(pressure_before, pressure_after),
        "stdout": stdout.decode(),
    }


def beside(before, after, own_cpu_s: float) -> dict:
    """What the machine did during a run, from two readings of its CPU times (summed over
    its CPUs): ``others_cpu_s``, CPU time not the run's own (other processes, the kernel's
    writeback of dirty pages); ``iowait_s``, idle CPUs waiting on the disk; ``steal_s``,
    time the hypervisor gave this VM's CPUs to others. The same work takes more CPU time
    on a machine whose neighbours are busy, so a run with much steal is not comparable
    with one without."""
    delta = {field: getattr(after, field) - getattr(before, field) for field in after._fields}
    busy = sum(delta.get(field, 0.0) for field in ("user", "nice", "system", "irq", "softirq"))
    return {
        "others_cpu_s": round(max(busy - own_cpu_s, 0.0), 2),
        "iowait_s": round(delta.get("iowait", 0.0), 2),
        "steal_s": round(delta.get("steal", 0.0), 2),
    }


def io_pressure(path: Path = IO_PRESSURE) -> dict[str, float] | None:
    """The kernel's I/O stall totals so far, in seconds (``some``: at least one task was
    waiting on the disk; ``full``: every task that could run was), or None where the
    kernel keeps none."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    totals = {}
    for line in lines:
        kind, *fields = line.split()
        totals[kind] = int(dict(field.split("=") for field in fields)["total"]) / 1e6
    return totals


def stalled_on_io(before: dict | None, after: dict | None) -> dict:
    """The seconds of a run during which tasks stalled on the disk (``io_some_s``: some
    task; ``io_full_s``: every runnable task), from two ``io_pressure`` readings: I/O wait
    counts only idle CPUs, so a disk that slows a busy night shows here first (on
    2026-12-07 "some" was 30-77% of every 10 s while a night's floors took 3x their usual
    wall time). Nothing where the kernel keeps no totals."""
    if before is None or after is None:
        return {}
    return {
        f"io_{kind}_s": round(after[kind] - before[kind], 2)
        for kind in ("some", "full")
        if kind in before and kind in after
    }


def settle() -> float:
    """Write every dirty page back to the disk (the month just generated, gigabytes of
    it at national scale), so the night that follows does not pay for the generator's
    writes: the kernel would flush them while the intake runs, and each intake commit's
    own flush would wait behind them. Returns the seconds it took."""
    started = time.perf_counter()
    os.sync()
    return round(time.perf_counter() - started, 2)


def _mb(size: int) -> float:
    return round(size / 1024**2, 1)


def load_average() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def machine() -> dict:
    settings = Settings.from_env()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "duckdb_threads": settings.duckdb_threads,
        "duckdb_memory_limit": settings.duckdb_memory_limit,
    }
