"""How the benchmarks measure a run: a child process's wall time, CPU time and the peak
RSS of its whole process tree (dbt runs as a grandchild), and the machine it ran on."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time

import psutil

from collectwatch.config import Settings

# How often the process tree's memory is sampled: a shorter peak can be missed.
SAMPLE_S = 0.05


def timed(command: list[str], env: dict) -> dict:
    """Run ``command``; wall time, CPU time (user + system of the child and every process
    it waited for) and the process tree's peak RSS."""
    started = time.perf_counter()
    cpu_before = _children_cpu()
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
    if process.returncode != 0:
        raise RuntimeError(
            f"{command} exited {process.returncode}:\n{stdout.decode()}\n{stderr.decode()}"
        )
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(_children_cpu() - cpu_before, 2),
        "peak_rss_mb": round(peak / 1024**2),
        "stdout": stdout.decode(),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
