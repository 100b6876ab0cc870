"""Start-up time of ``provider-router --help``: how fast the command feels in a shell.

Runs the installed entry point (the same console script a user types) N times in fresh
processes and prints the median wall time and the median CPU time (user + system) of each run,
then lists the heavy modules that ``--help`` loaded, which should be none: ``--help`` only needs
``argparse``, so the package's top-level import must not pull the engine, pydantic, httpx or
kopf. A second row times ``python -c 'import provider_router'`` for the embedded users'
first import, which stays lazy until a name is used.

    python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("provider_router.engine", "provider_router.api", "pydantic", "httpx", "kopf",
         "kubernetes", "aiohttp", "yaml")
"""Modules whose presence after ``--help`` means the lazy import broke."""


def _script() -> list[str]:
    found = Path(sys.executable).with_name("provider-router")
    if found.exists():
        return [str(found)]
    on_path = shutil.which("provider-router")
    if on_path:
        return [on_path]
    return [sys.executable, "-m", "provider_router.cli"]


def _time(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``runs`` fresh runs of ``cmd``."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        before = os.times()
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=60)
        walls.append(time.perf_counter() - start)
        after = os.times()
        cpus.append((after.children_user - before.children_user)
                    + (after.children_system - before.children_system))
    return statistics.median(walls), statistics.median(cpus)


def heavy_after_help() -> list[str]:
    """The heavy modules loaded by parsing ``--help`` in a fresh interpreter."""
    code = ("import sys\n"
            "from provider_router.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('\\n' + __import__('json').dumps([m for m in {list(HEAVY)!r} "
            "if m in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    loaded: list[str] = json.loads(out.splitlines()[-1])
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = [("provider-router --help", [*_script(), "--help"]),
            ("import provider_router", [sys.executable, "-c", "import provider_router"]),
            ("python -c pass (floor)", [sys.executable, "-c", "pass"])]
    print(f"median of {args.runs} fresh processes")
    print(f"{'command':<28}{'wall s':>9}{'cpu s':>9}")
    for label, cmd in rows:
        wall, cpu = _time(cmd, args.runs)
        print(f"{label:<28}{wall:>9.3f}{cpu:>9.3f}")
    loaded = heavy_after_help()
    print("heavy modules loaded by --help:", ", ".join(loaded) if loaded else "none")


if __name__ == "__main__":
    main()
