"""The container image's build path, replayed without a container engine.

Why: no Docker engine runs here or in CI, yet a Dockerfile that does not build, or an image whose
entry point cannot start, is only found when someone deploys the chart. So this module lints
the Dockerfile with hadolint and replays what its two stages do: the
builder's COPY of the (.dockerignore-filtered) context and ``pip wheel --no-deps``; the final
stage's ``pip install`` of that wheel alone into a fresh environment; then the ENTRYPOINT and the
arguments the Helm chart passes. (The only deviations, for speed: pip's cache is reused where
the image uses --no-cache-dir, and nothing is byte-compiled.)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chart._helm import REPO_ROOT, VARIANTS, render
from support.tools import ToolUnavailable, hadolint_path, in_ci

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
REQUIREMENTS = REPO_ROOT / "requirements-image.txt"
CLI_MISSING = (
    "provider_router.cli is not in the wheel: src/provider_router/cli.py (the CLI, written "
    "separately) does not exist yet, so the image's ENTRYPOINT `provider-router` cannot start. "
    "This test passes once it exists and provides `operator` and `serve`.")


# -- the Dockerfile, parsed -------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage (each FROM starts one); ARGs before the first FROM dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), " ".join(args.split()))
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def _all(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def test_hadolint() -> None:
    try:
        hadolint = hadolint_path()
    except ToolUnavailable as err:
        if in_ci():
            pytest.fail(f"hadolint unavailable: {err}", pytrace=False)
        pytest.skip(f"hadolint unavailable: {err}")
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# -- .dockerignore, as Docker reads it --------------------------------------------------------


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per line; Docker's rules: last match wins, a match on a parent counts."""
    patterns = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i:end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negated, re.compile(regex)))
    return patterns


def _excluded(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = relative.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negated, regex in patterns:
        if any(regex.fullmatch(p) for p in prefixes):
            excluded = not negated
    return excluded


def build_context(destination: Path) -> list[str]:
    """Copy what Docker would send as the build context; return the relative file paths."""
    patterns = _ignore_patterns()
    # Directories no negation can reach are pruned, so the walk never enters .venv or .git.
    reachable = {regex.pattern.split("/")[0].replace("\\", "")
                 for negated, regex in patterns if negated}
    sent = []
    for root, dirs, files in os.walk(REPO_ROOT):
        rel_root = Path(root).relative_to(REPO_ROOT)
        dirs[:] = [d for d in dirs
                   if not (_excluded((rel_root / d).as_posix(), patterns)
                           and (rel_root / d).parts[0] not in reachable)]
        for name in files:
            relative = (rel_root / name).as_posix()
            if not _excluded(relative, patterns):
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(root) / name, target)
                sent.append(relative)
    return sorted(sent)


def test_dockerignore_sends_only_what_the_build_needs(tmp_path: Path) -> None:
    sent = build_context(tmp_path)
    top = ("pyproject.toml", "README.md", REQUIREMENTS.name)
    assert {*top, "src/provider_router/__init__.py"} <= set(sent)
    assert all(p in top or p.startswith("src/") for p in sent), sent
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in sent)


def test_dockerignore_matcher_follows_docker_rules() -> None:
    patterns = _ignore_patterns()
    assert _excluded(".venv/bin/python", patterns)
    assert _excluded("tests/chart/test_image.py", patterns)
    assert _excluded("charts/provider-router/values.yaml", patterns)
    assert not _excluded("src/provider_router/api/_crd.py", patterns)
    assert _excluded("src/provider_router/__pycache__/x.cpython-311.pyc", patterns)


# -- the two stages, replayed --------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledImage:
    venv: Path
    wheel: Path
    env: dict[str, str]

    @property
    def entrypoint(self) -> Path:
        return self.venv / "bin" / "provider-router"

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.entrypoint), *args], capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=self.venv, check=False)


def _clean_env() -> dict[str, str]:
    """The environment of a fresh container: nothing that points back into this checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _check(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 600.0) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{shlex.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}")


def _replay_builder_copies(context: Path, workdir: Path) -> None:
    """The builder stage's COPY instructions, from the filtered context into WORKDIR."""
    builder, _ = _stages()
    for args in _all(builder, "COPY"):
        *sources, destination = args.split()
        assert not any(s.startswith("--") for s in sources), args
        target = workdir / destination
        for source in sources:
            path = context / source
            assert path.exists(), f"COPY {source}: not in the build context (.dockerignore?)"
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> InstalledImage:
    root = tmp_path_factory.mktemp("image")
    env = _clean_env()
    context, workdir, wheels = root / "context", root / "src", root / "wheels"
    build_context(context)
    _replay_builder_copies(context, workdir)
    # Builder: RUN python -m pip wheel --no-deps --wheel-dir /wheels .
    _check([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
            str(wheels), "."], env, workdir)
    (wheel,) = wheels.glob("*.whl")
    # Final: a clean Python 3.11 with nothing but pip, then the locked dependencies and the
    # wheel alone:
    # RUN python -m pip install --no-cache-dir --only-binary :all: --require-hashes \
    #       -r /tmp/requirements-image.txt \
    #  && python -m pip install --no-cache-dir --no-deps /tmp/wheels/*.whl
    # (here with pip's cache, and without byte-compiling, which only costs time in a test).
    venv = root / "venv"
    python = str(venv / "bin" / "python")
    _check([sys.executable, "-m", "venv", str(venv)], env, root)
    _check([python, "-m", "pip", "install", "--quiet", "--no-compile", "--only-binary", ":all:",
            "--require-hashes", "-r", str(context / REQUIREMENTS.name)], env, root)
    _check([python, "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps", str(wheel)],
           env, root)
    return InstalledImage(venv=venv, wheel=wheel, env=env)


def _normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked_pins() -> dict[str, str]:
    """name -> version of every requirement in requirements-image.txt."""
    pins = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)==([^ ;\\]+)", line)
        if match:
            pins[_normalized(match.group(1))] = match.group(2)
    return pins


def test_image_runs_exactly_the_locked_dependencies(image: InstalledImage) -> None:
    """What the image installs is what uv.lock says (and so what the tests ran), nothing
    more: pip resolved nothing of its own. ``make lint`` keeps the file in step with uv.lock."""
    result = subprocess.run([str(image.venv / "bin" / "python"), "-m", "pip", "list",
                             "--format", "freeze", "--exclude", "pip"],
                            capture_output=True, text=True, env=image.env, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    installed = {}
    for line in result.stdout.splitlines():
        name, _, version = line.partition("==")
        installed[_normalized(name)] = version
    installed.pop("zoey-provider-router")
    installed.pop("setuptools", None)  # venv's own, on older Pythons
    pins = _locked_pins()
    assert installed == {name: pins[name] for name in installed}, "versions differ from the lock"
    assert set(installed) <= set(pins)
    assert {"pydantic", "kopf", "httptools", "orjson"} <= set(installed)


def _wheel_has_cli(image: InstalledImage) -> bool:
    with zipfile.ZipFile(image.wheel) as wheel:
        return "provider_router/cli.py" in wheel.namelist()


def test_wheel_carries_the_package_and_the_console_script(image: InstalledImage) -> None:
    with zipfile.ZipFile(image.wheel) as wheel:
        names = wheel.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    assert "provider_router/__init__.py" in names
    assert "provider_router/api/_crd.py" in names
    assert not any(n.startswith(("tests/", "charts/")) for n in names)
    assert "provider-router = provider_router.cli:main" in scripts
    assert image.entrypoint.is_file()


def test_installed_package_imports_without_the_source_tree(image: InstalledImage) -> None:
    python = image.venv / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", "import provider_router.api, provider_router, sys; "
         "print(provider_router.__file__)"],
        capture_output=True, text=True, env=image.env, cwd=image.venv, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert str(image.venv) in result.stdout


def test_entrypoint_help(image: InstalledImage) -> None:
    if not _wheel_has_cli(image):
        pytest.fail(CLI_MISSING, pytrace=False)
    result = image.run("--help")
    assert result.returncode == 0, result.stderr
    for command in ("operator", "serve"):
        assert command in result.stdout, result.stdout


def _chart_flags() -> set[str]:
    """Every flag the chart passes to `provider-router operator`, across the variants."""
    flags: set[str] = set()
    for values in VARIANTS.values():
        flags |= {a for a in render_args(values) if a.startswith("-")}
    return flags


def render_args(values: dict[str, object]) -> list[str]:
    from support.tools import helm_path

    try:
        return render(helm_path(), values).args
    except ToolUnavailable as err:
        if in_ci():
            pytest.fail(f"helm unavailable: {err}", pytrace=False)
        pytest.skip(f"helm unavailable: {err}")


def test_operator_accepts_every_flag_the_chart_passes(image: InstalledImage) -> None:
    if not _wheel_has_cli(image):
        pytest.fail(CLI_MISSING, pytrace=False)
    result = image.run("operator", "--help")
    assert result.returncode == 0, result.stderr
    missing = sorted(f for f in _chart_flags() if f not in result.stdout)
    assert missing == [], (
        f"the chart passes {missing} to `provider-router operator`, but its --help does not "
        "list them. With replicas > 1 the chart renders `--leader-elect --leader-namespace "
        "<release namespace>` (for OperatorOptions.leader_elect/leader_namespace): add them to "
        "the CLI, or change charts/provider-router/templates/deployment.yaml and this test.")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def standalone(image: InstalledImage) -> Iterator[tuple[subprocess.Popen[str], int]]:
    if not _wheel_has_cli(image):
        pytest.fail(CLI_MISSING, pytrace=False)
    port = _free_port()
    manifests = REPO_ROOT / "examples" / "kubernetes"
    process = subprocess.Popen(
        [str(image.entrypoint), "serve", "--manifests", str(manifests), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=image.env,
        cwd=image.venv)
    try:
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_standalone_serve_answers_healthz(standalone: tuple[subprocess.Popen[str], int]) -> None:
    process, port = standalone
    deadline = time.monotonic() + 30
    last_error = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"`provider-router serve` exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                assert reply.status == 200
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            last_error = str(err)
            time.sleep(0.3)
    pytest.fail(f"/healthz did not answer within 30 s: {last_error}")
