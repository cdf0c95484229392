"""How the benchmarks measure a stage (bench/measure.py): a real child process's CPU time,
disk writes and peak memory, and what the rest of the machine did meanwhile. What is
asserted are lower bounds the child certainly caused, never durations."""

from __future__ import annotations

import os
import sys
from collections import namedtuple

import psutil
import pytest

from collectwatch.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
import measure  # bench/ is scripts, not a package

# A child that spins ~0.3 s of CPU, holds 64 MiB, and writes 16 MiB it flushes to the disk.
CHILD = """
import os, sys, time
held = bytearray(64 * 1024**2)
for i in range(0, len(held), 4096):
    held[i] = 1
deadline = time.process_time() + 0.3
while time.process_time() < deadline:
    pass
with open(sys.argv[1], "wb") as file:
    file.write(os.urandom(16 * 1024**2))
    file.flush()
    os.fsync(file.fileno())
print("done")
"""


def test_timed_measures_the_childs_cpu_disk_writes_and_memory(tmp_path):
    target = tmp_path / "written.bin"
    run = measure.timed([sys.executable, "-c", CHILD, str(target)], dict(os.environ))
    assert run["stdout"].strip() == "done"
    assert run["cpu_s"] >= 0.3
    assert run["peak_rss_mb"] >= 64
    # The 16 MiB reached the disk: the file system under tmp_path is a block device here
    # (tmpfs would count nothing, so the test says so rather than pass by accident).
    device = psutil.disk_partitions(all=True)
    mounted = max((p for p in device if str(tmp_path).startswith(p.mountpoint)),
                  key=lambda p: len(p.mountpoint))  # fmt: skip
    if mounted.fstype == "tmpfs":
        pytest.skip("tmp_path is on tmpfs: no block I/O to count")
    assert run["disk"]["written_mb"] >= 16
    pressure = {"io_some_s", "io_full_s"} if measure.io_pressure() is not None else set()
    assert set(run["beside"]) == {"others_cpu_s", "iowait_s", "steal_s", *pressure}
    assert all(value >= 0 for value in run["beside"].values())


def test_a_failing_child_raises_with_its_output():
    with pytest.raises(RuntimeError, match="exited 3"):
        measure.timed([sys.executable, "-c", "import sys; print('x'); sys.exit(3)"], {})


Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")


def test_beside_is_the_machines_cpu_time_not_the_runs_own():
    before = Times(100, 1, 50, 1000, 5, 0.5, 0.5, 2, 0, 0)
    after = Times(130, 1, 60, 1010, 9, 0.5, 1.5, 7, 3, 0)
    # busy: 30 user + 10 system + 1 softirq = 41 CPU-s, of which the run's own 25
    assert measure.beside(before, after, own_cpu_s=25) == {
        "others_cpu_s": 16,
        "iowait_s": 4,
        "steal_s": 5,
    }
    # the run's own time is read from another clock: never a negative remainder
    assert measure.beside(before, after, own_cpu_s=45)["others_cpu_s"] == 0


def test_beside_on_a_system_without_steal_or_iowait():
    Plain = namedtuple("Plain", "user system idle")
    assert measure.beside(Plain(1, 1, 1), Plain(3, 2, 5), own_cpu_s=1) == {
        "others_cpu_s": 2,
        "iowait_s": 0,
        "steal_s": 0,
    }


def test_io_pressure_reads_the_kernels_stall_totals_in_seconds(tmp_path):
    psi = tmp_path / "io"
    psi.write_text(
        "some avg10=2.20 avg60=4.24 avg300=2.42 total=1779279482\n"
        "full avg10=1.59 avg60=3.09 avg300=1.86 total=1638117119\n"
    )
    assert measure.io_pressure(psi) == {"some": 1779.279482, "full": 1638.117119}
    assert measure.io_pressure(tmp_path / "absent") is None


def test_stalled_on_io_is_the_difference_of_two_readings():
    before, after = {"some": 100.0, "full": 80.0}, {"some": 142.5, "full": 90.25}
    assert measure.stalled_on_io(before, after) == {"io_some_s": 42.5, "io_full_s": 10.25}
    # a kernel without PSI (or one reading missing): nothing, not zeros
    assert measure.stalled_on_io(None, after) == {}
    assert measure.stalled_on_io({"some": 1.0}, {"some": 3.0}) == {"io_some_s": 2.0}
