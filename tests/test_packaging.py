"""Packaging: lower bounds that admit another (CUDA) torch, pip leaving an installed torch alone,
and requirements.lock being the exact set `make` installs and a set the bounds admit. Offline:
pip resolves against stub wheels (metadata only) in a scratch environment."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
MAKE_EXTRAS = ("test", "serve", "browser")  # what the Makefile installs
OTHER_TORCH = ("2.6.0", "2.11.0+cu130", "2.12.1+cu128", "2.13.0+cpu", "2.14.1+rocm6.4")


def requirements(extras=()) -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PYPROJECT["optional-dependencies"][extra]]
    return reqs


def lock() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version.strip()
    return out


def test_dependencies_are_lower_bounds_that_admit_other_torch_builds():
    reqs = {canonicalize_name(r.name): r for r in requirements()}
    pinned = [str(r) for r in reqs.values() if any(s.operator == "==" for s in r.specifier)]
    assert not pinned, f"exact pins belong in requirements.lock, not in dependencies: {pinned}"
    for v in OTHER_TORCH:
        assert reqs["torch"].specifier.contains(v, prereleases=True), v
    assert not reqs["torch"].specifier.contains("2.5.1")  # transformers 5 needs >= 2.6
    assert "scikit-learn" not in reqs  # never imported directly (alt-profanity-check pins its own)
    # TRL internals are subclassed: the next minor release must be a deliberate upgrade
    assert reqs["trl"].specifier.contains("1.16.3") and not reqs["trl"].specifier.contains("1.17.0")


def test_the_lock_satisfies_every_declared_requirement():
    locked = lock()
    for r in requirements(MAKE_EXTRAS):
        name = canonicalize_name(r.name)
        assert name in locked, f"{r.name} is required but not in requirements.lock"
        assert r.specifier.contains(locked[name], prereleases=True), (str(r), locked[name])


def test_the_lock_is_the_installed_set():
    installed = {
        canonicalize_name(d.metadata["Name"]): Version(d.version)
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) not in ("replyrl", "pip", "setuptools")
    }
    locked = {k: Version(v) for k, v in lock().items()}
    # a local label (torch 2.13.0+cpu) is the lock's version built for one platform
    installed = {k: Version(v.public) for k, v in installed.items()}
    assert installed == locked


def _stub_wheel(folder: Path, name: str, version: str, requires: list[str] = ()) -> Path:
    """A wheel holding only metadata: enough for pip's resolver, nothing to import."""
    dist = f"{canonicalize_name(name).replace('-', '_')}-{version}"
    path = folder / f"{dist}-py3-none-any.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", meta)
        z.writestr(f"{dist}.dist-info/WHEEL", wheel)
        z.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    # --isolated: no user/site config or PIP_* variables (this machine's find-links, constraints)
    cmd = [sys.executable, "-m", "pip", "--isolated", "--python", str(python), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A scratch environment holding a CUDA torch build, and stub wheels of everything else."""
    tmp = tmp_path_factory.mktemp("pip")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "env")], check=True)
    python = tmp / "env" / "bin" / "python"
    (tmp / "have").mkdir()
    (tmp / "index").mkdir()
    torch = _stub_wheel(tmp / "have", "torch", "2.11.0+cu130")
    r = _pip(python, "install", "--no-index", "--no-deps", str(torch))
    assert r.returncode == 0, r.stderr
    locked = lock()
    for req in requirements():
        name = canonicalize_name(req.name)
        _stub_wheel(tmp / "index", req.name, locked[name])  # incl. torch 2.13.0, a candidate
    return tmp, python


def _dry_run(tmp: Path, python: Path, requires: list[str]) -> dict:
    project = _stub_wheel(tmp / "index", "replyrl", "0.1.0", requires)
    r = _pip(
        python,
        "install",
        "--dry-run",
        "--no-index",
        "--find-links",
        str(tmp / "index"),
        "--report",
        str(tmp / "report.json"),
        str(project),
    )
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp / "report.json").read_text())
    return {i["metadata"]["name"]: i["metadata"]["version"] for i in report["install"]}


def test_pip_leaves_an_installed_cuda_torch_alone(scratch):
    tmp, python = scratch
    plan = _dry_run(tmp, python, [str(r) for r in requirements()])
    assert "replyrl" in plan and "transformers" in plan  # the resolver did run over our deps
    assert "torch" not in plan, f"pip would replace the installed torch 2.11.0+cu130: {plan}"


def test_an_exact_torch_pin_would_replace_it(scratch):
    # the control: the old `torch==2.13.0` pin makes pip swap the CUDA build for the CPU one
    tmp, python = scratch
    pinned = ["torch==2.13.0", *(str(r) for r in requirements() if r.name != "torch")]
    assert _dry_run(tmp, python, pinned).get("torch") == "2.13.0"
