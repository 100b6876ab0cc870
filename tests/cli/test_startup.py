"""``provider-router --help`` loads only what argparse needs: the package's top-level import is
lazy (PEP 562), so the engine, pydantic, httpx and kopf stay unloaded until a command or an
embedded name needs them. Checked in a fresh interpreter, where nothing is cached."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import provider_router

HEAVY = ("provider_router.engine", "provider_router.api", "provider_router._embedded",
         "pydantic", "httpx", "kopf", "kubernetes")

_PROBE = """
import json, sys
from provider_router.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:
    code = done.code
print(json.dumps({"code": code, "loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def _fresh(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE % (HEAVY,), *argv], capture_output=True,
                          text=True, timeout=60, check=True)
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_help_imports_nothing_heavy() -> None:
    assert _fresh("--help") == {"code": 0, "loaded": []}
    assert _fresh("serve", "--help") == {"code": 0, "loaded": []}


def test_the_probe_sees_a_heavy_import() -> None:
    # The same probe after a command that does need the models: it must report them, or the
    # test above would pass for the wrong reason.
    loaded = _fresh("crds")["loaded"]
    assert "pydantic" in loaded  # type: ignore[operator]
    assert "provider_router.api" in loaded  # type: ignore[operator]


def test_embedded_names_load_on_first_use() -> None:
    code = ("import sys, provider_router as p\n"
            "before = 'provider_router.engine' in sys.modules\n"
            "router = p.ProviderRouter()\n"
            "from provider_router import RoutingStrategy\n"
            "print(before, type(router).__module__, RoutingStrategy.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["False", "provider_router._embedded", "Strategy"]


def test_public_names_are_listed_and_unknown_ones_raise() -> None:
    from provider_router import _embedded

    for name in provider_router.__all__:
        assert name in dir(provider_router)
        if name != "__version__":
            assert getattr(provider_router, name) is getattr(_embedded, name)
    with pytest.raises(AttributeError, match="NoSuchName"):
        provider_router.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
