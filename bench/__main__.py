"""``make bench``: runs every ``bench/bench_*.py`` module's ``run(report)`` and prints the figures.

Benchmarks measure; they never assert. ``BENCH=certs,plans make bench`` runs a subset.
Each module gets a ``Report`` to print named figures into, and starts what it needs itself
(a service container, the whole stack through ``devstack``), on the same real broker and database as the tests.
"""
import eventlet

eventlet.monkey_patch()  # Nameko containers and standalone proxies need a patched world, as in the tests

import importlib  # noqa: E402
import os
import platform
import sys
import time
from pathlib import Path


class Report:
    def __init__(self, name):
        self.name = name
        self.rows = []

    def figure(self, label, value, unit=""):
        self.rows.append((label, value, unit))
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
        print(f"  {label:<60} {shown} {unit}", flush=True)


def main():
    selected = set(filter(None, os.environ.get("BENCH", "").split(",")))
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    for module_name in modules:
        area = module_name.removeprefix("bench_")
        if selected and area not in selected:
            continue
        print(f"\n== {area}", flush=True)
        started = time.monotonic()
        importlib.import_module(f"bench.{module_name}").run(Report(area))
        print(f"  ({time.monotonic() - started:.1f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
