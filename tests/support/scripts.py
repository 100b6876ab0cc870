"""What the test scripts share: the cache folder, a file lock, and loading a script by path.

Why: the control-plane starter, the image builder, the node and the tool installer each run on
their own (``python tests/testenv/starter.py``, ``make image``, ...) and are imported by the
tests as well. They all cache outside the repository, take a lock so that parallel sessions do
not build twice, and load one another by path (``tests/`` is not a package). Those three facts
live here once. Standard library only, like the scripts themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

PROJECT_NAME = "zoey-provider-router"


def cache_dir(kind: str) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/zoey-provider-router/<kind>``: outside the repository,
    shared by every checkout on the machine."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / PROJECT_NAME / kind


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created with its folder), held for the block,
    so that parallel sessions do not build or start the same thing twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_script(name: str, path: Path) -> ModuleType:
    """Import a script of this repository by path, once, under ``name``; the module is
    registered first, as dataclasses need."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
