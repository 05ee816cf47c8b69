"""What every benchmark result records of the machine it ran on, with a gauge of the machine's speed.

The machines these benchmarks run on are shared and change from day to day (the same code has taken 1.5x as
long on one as on another), so a result carries `speed_probe_ms`: the best of twenty runs of a fixed pure-Python
loop, taken when the result is written. Two results from different days compare only as far as their probes
agree; within a run, compare the ratios against the baseline.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any


def speed_probe_ms(rounds: int = 20) -> float:
    """Milliseconds for a fixed pure-Python loop (integer arithmetic, no allocation growth): the least of `rounds`
    runs, as the least disturbed by other work on the machine."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        total = 0
        for i in range(250_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """CPUs, memory, CPU model, Python, the speed probe and the load average, for a result's `machine` field."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(memory),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "speed_probe_ms": speed_probe_ms(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def describe(machine: dict[str, Any]) -> str:
    """One line for a results file's header."""
    load = " ".join(str(x) for x in machine["load_average"])
    return (
        f"{machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}, speed probe {machine['speed_probe_ms']} ms (bench/machine.py; lower is "
        f"faster), load average {load}"
    )
