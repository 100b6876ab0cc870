"""Instructions per ``/v1/route`` request of the real server, counted by callgrind: the one
measure of the route path's cost that a shared, noisy machine does not move.

Why: wall-clock runs of ``route_service.py`` (and even the paired rounds of
``route_against.py``) swing by 10-20% here, so they cannot tell whether a change costs 5%.
Instruction counts are deterministic (hash seed fixed), and on this path they track CPU time.

Each measurement starts ``route_service.py --serve KIND`` (the same server, table and
settings as the throughput bench: uvloop, 1,000 providers, leases) under
``valgrind --tool=callgrind``, sends a warm-up over 64 keep-alive connections, zeroes the
counters (``callgrind_control --zero``), sends exactly ``--requests`` more, and reads the total
(``callgrind_control --dump``). The client is this file, in another process: its instructions
are not counted. Under callgrind the server runs some 50 times slower, so fewer leases are
live than at full speed; lease expiry is still on every route once the TTL has passed.

    python bench/route_instructions.py [--against ../base] [--servers route-rr,route-weighted]

``--against`` names another checkout with its own ``.venv`` (see ``route_against.py``);
``--keep DIR`` keeps the counted dumps, so that ``callgrind_annotate --inclusive=yes`` shows
where two checkouts differ. Needs valgrind (``make bench-deps``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from route_service import ROUTE_PATH, keep_alive_gets, require_venv, start_server, stop_server

HERE = Path(__file__).resolve().parent.parent
CONNECTIONS = 64


def send(port: int, total: int, connections: int = CONNECTIONS) -> None:
    """Exactly ``total`` keep-alive GETs of the route path, one in flight per connection;
    raises if an answer is not a 200."""
    _, errors = keep_alive_gets(port, ROUTE_PATH, connections, total=total)
    if errors:
        raise RuntimeError(f"{errors} of {total} answers were not a 200")


def _newest(out_dir: Path) -> Path:
    return max(out_dir.glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)


def _total(out_dir: Path) -> int:
    """The instruction total of the newest dump in ``out_dir``."""
    dump = _newest(out_dir)
    for line in dump.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {dump}")


def instructions(checkout: Path, kind: str, warmup: int, requests: int,
                 keep: Path | None = None) -> float:
    """Instructions per request; the counted dump is copied to ``keep`` if given."""
    with tempfile.TemporaryDirectory(prefix="route-instructions-") as tmp:
        out = Path(tmp)
        child, port = start_server(
            kind, None, "tuned", str(checkout),
            wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.out",
                     f"--log-file={out}/valgrind.log"],
            env={"PYTHONHASHSEED": "0"})
        try:
            send(port, warmup)
            subprocess.run(["callgrind_control", "--zero", str(child.pid)], check=True,
                           capture_output=True, timeout=60)
            send(port, requests)
            subprocess.run(["callgrind_control", "--dump", str(child.pid)], check=True,
                           capture_output=True, timeout=60)
            if keep is not None:
                keep.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(_newest(out), keep)
            return _total(out) / requests
        finally:
            stop_server(child)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout (with a .venv) to count too, and compare")
    parser.add_argument("--servers", default="route-rr,route-weighted")
    parser.add_argument("--warmup", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep each counted dump as DIR/KIND.SIDE.callgrind, for "
                             "callgrind_annotate")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: run `make bench-deps`")
    sides = {"this": HERE}
    if args.against is not None:
        other = args.against.resolve()
        require_venv(other)
        sides["other"] = other
    print(f"callgrind, {CONNECTIONS} connections, {args.warmup} warm-up then {args.requests} "
          f"counted requests; " + ", ".join(f"{k}: {v}" for k, v in sides.items()))
    for kind in (k for k in args.servers.split(",") if k):
        counts = {side: instructions(path, kind, args.warmup, args.requests,
                                     args.keep / f"{kind}.{side}.callgrind" if args.keep
                                     else None)
                  for side, path in sides.items()}
        line = "  ".join(f"{side} {count / 1000:7.1f}k" for side, count in counts.items())
        ratio = (f"  this / other {counts['this'] / counts['other']:.3f}x"
                 if "other" in counts else "")
        print(f"{kind:<16} instructions per request: {line}{ratio}", flush=True)


if __name__ == "__main__":
    main()
