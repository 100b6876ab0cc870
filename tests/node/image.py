"""Build the product's image from its own Dockerfile without Docker or a public registry.

Why: this machine (and CI) has no container engine daemon and reaches no image registry, yet the
only honest test of the image is to build it from the repository's `Dockerfile` and run it on a
real kubelet. So the pieces come from Debian packages:

1. a base image: `mmdebstrap` makes a bookworm rootfs with python3 and a venv at /opt/venv (on
   PATH, so the Dockerfile's `python -m pip` and the `provider-router` console script work as on
   `python:3.11-slim`), imported with `buildah` as ``localhost/zoey-python-base:<hash>``;
   cached by the hash of its inputs (suite, packages, hooks);
2. the app image: ``buildah bud`` of the repository's Dockerfile with
   ``--build-arg PYTHON_IMAGE=<base>``, tagged ``localhost/zoey-provider-router:dev``. This
   machine's CA bundle goes in as the build secret ``pip-ca`` (mounted for the pip steps only,
   never in a layer);
3. the app image saved as a docker-archive in the cache (keyed by the hash of the build context
   and the base), which the node imports with ``ctr -n k8s.io images import``.

Standard library only. CLI: ``python tests/node/image.py build|path``; ``make image`` runs build.
All buildah storage lives under the cache directory, not /var/lib/containers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:  # run as a script: find support.scripts beside us (appended,
    sys.path.append(str(TESTS_DIR))  # so that nothing in tests/ can shadow the standard library)
from support.scripts import cache_dir, file_lock  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/zoey-provider-router:dev"
BASE_NAME = "localhost/zoey-python-base"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
VENV = "/opt/venv"
# Everything the Dockerfile copies (its .dockerignore keeps the rest out) plus the Dockerfile.
CONTEXT_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "src",
                  "requirements-image.txt")
# The CA bundle this machine's pip trusts: given to pip in the build as a secret, if present.
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt",)


class ImageError(RuntimeError):
    """The image could not be built."""


def log(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    return cache_dir("image")


def archive_path() -> Path:
    """Where the archive of the current sources would be (it may not exist yet)."""
    return cache_root() / f"app-{app_digest()}.tar"


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def _base_hook() -> str:
    # Runs in the finished rootfs. The venv gives a writable prefix for pip (Debian's python3 is
    # "externally managed") and puts `python` and console scripts on PATH. Caches, docs and
    # apt lists go: they would only make the image bigger.
    return (
        f"chroot \"$1\" python3 -m venv {VENV} && "
        f"chroot \"$1\" {VENV}/bin/python -m pip --version >/dev/null && "
        "rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/* "
        "\"$1\"/usr/share/doc/* \"$1\"/usr/share/man/* \"$1\"/usr/share/locale/*"
    )


def base_digest() -> str:
    parts = [SUITE.encode(), ",".join(BASE_PACKAGES).encode(), _base_hook().encode()]
    return _digest(parts)


def base_tag() -> str:
    return f"{BASE_NAME}:{base_digest()}"


def app_digest() -> str:
    parts = [base_digest().encode()]
    for name in CONTEXT_INPUTS:
        path = REPO_ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix in (".pyc", ".pyo"):
                continue
            parts.append(str(file.relative_to(REPO_ROOT)).encode())
            parts.append(file.read_bytes())
    return _digest(parts)


def _buildah() -> list[str]:
    found = shutil.which("buildah")
    if found is None:
        raise ImageError("buildah not found: run `make node-deps`")
    root = cache_root()
    # vfs: works in any container (no overlay-on-overlay, no fuse); our own storage root so the
    # machine's /var/lib/containers is never touched.
    return [found, "--root", str(root / "storage"), "--runroot", str(root / "run"),
            "--storage-driver", "vfs"]


def _run(cmd: list[str], stage: str, timeout: float = 1800, stream: bool = False) -> str:
    """Run one step; stream=True shows its output live (long builds), else keep it for errors."""
    started = time.monotonic()
    if stream:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                lines.append(line.rstrip())
                if line.startswith(("STEP ", "[")) or "Successfully" in line:
                    log(f"{stage}: {line.rstrip()[:160]}")
            code = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out = "\n".join(lines)
    else:
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=timeout, check=False)
        code, out = result.returncode, result.stdout + result.stderr
    if code != 0:
        tail = "\n".join(out.splitlines()[-30:])
        raise ImageError(f"{stage} failed ({code}): {' '.join(cmd[:6])} ...\n{tail}")
    log(f"{stage}: ok in {time.monotonic() - started:.1f}s")
    return out


def _image_exists(ref: str) -> bool:
    result = subprocess.run([*_buildah(), "inspect", "--type", "image", ref],
                            capture_output=True, text=True, timeout=120, check=False)
    return result.returncode == 0


def build_base() -> str:
    """The base image's local name, made (mmdebstrap + buildah) only if not cached."""
    tag = base_tag()
    if _image_exists(tag):
        log(f"base: reusing {tag}")
        return tag
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageError("mmdebstrap not found: run `make node-deps`")
    log(f"base: mmdebstrap {SUITE} with {', '.join(BASE_PACKAGES)} (about half a minute)")
    with tempfile.TemporaryDirectory(prefix="zoey-base-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        _run([mmdebstrap, "--variant=minbase", "--mode=root", "--format=tar",
              f"--include={','.join(BASE_PACKAGES)}",
              f"--customize-hook={_base_hook()}", SUITE, str(rootfs)], "base: mmdebstrap")
        log(f"base: rootfs {rootfs.stat().st_size / 1e6:.0f} MB; importing with buildah")
        buildah = _buildah()
        created = _run([*buildah, "from", "scratch"], "base: buildah from")
        container = created.strip().splitlines()[-1]
        try:
            _run([*buildah, "add", container, str(rootfs), "/"], "base: buildah add")
            _run([*buildah, "config", "--env", f"PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:"
                  "/usr/sbin:/usr/bin:/sbin:/bin", "--env", "LANG=C.UTF-8",
                  "--cmd", "python3", container], "base: buildah config")
            _run([*buildah, "commit", "--rm", container, tag], "base: buildah commit")
        except BaseException:
            subprocess.run([*buildah, "rm", container], capture_output=True, timeout=120,
                           check=False)
            raise
    return tag


def _secret_args() -> list[str]:
    for bundle in CA_BUNDLES:
        if Path(bundle).is_file():
            return ["--secret", f"id=pip-ca,src={bundle}"]
    return []


def build(force: bool = False) -> Path:
    """Base (cached), then the Dockerfile, then the archive; returns the archive path."""
    started = time.monotonic()
    with file_lock(cache_root() / ".lock"):
        target = archive_path()
        if target.exists() and not force:
            log(f"reusing {target} ({target.stat().st_size / 1e6:.0f} MB), sources unchanged")
            return target
        log("stage 1/3: base image")
        base = build_base()
        log(f"stage 2/3: buildah bud Dockerfile --build-arg PYTHON_IMAGE={base}")
        buildah = _buildah()
        _run([*buildah, "bud", "--network", "host", "--layers=false",
              "--build-arg", f"PYTHON_IMAGE={base}", *_secret_args(),
              "-f", str(REPO_ROOT / "Dockerfile"), "-t", IMAGE, str(REPO_ROOT)],
             "app: buildah bud", stream=True)
        log("stage 3/3: saving the image archive")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            _run([*buildah, "push", IMAGE, f"docker-archive:{tmp}:{IMAGE}"], "app: save")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        for old in target.parent.glob("app-*.tar"):  # one archive is enough
            if old != target:
                old.unlink(missing_ok=True)
        (target.parent / "latest.json").write_text(json.dumps(
            {"image": IMAGE, "archive": str(target), "base": base,
             "size_bytes": target.stat().st_size}) + "\n")
    log(f"built {IMAGE} in {time.monotonic() - started:.1f}s: {target} "
        f"({target.stat().st_size / 1e6:.0f} MB archive)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build (or reuse) the image archive")
    build_parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    commands.add_parser("path", help="print the archive path for the current sources")
    args = parser.parse_args(argv)
    if args.command == "path":
        print(archive_path())
        return 0
    if os.geteuid() != 0:
        log(f"building the image needs root (mmdebstrap, buildah); running as uid {os.geteuid()}")
        return 1
    try:
        print(build(force=args.force))
    except (ImageError, subprocess.TimeoutExpired) as err:
        log(f"failed: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
