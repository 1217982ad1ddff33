"""An installed distribution (sdist -> wheel -> fresh venv) finds its own data, away from the
checkout: the patch series and their table, the container recipe, the licence."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from setuptools import find_packages

from harness import paths

ROOT = Path(__file__).resolve().parents[2]
DATA_PACKAGES = {"harness.patches": "patches", "harness.containers": "containers"}


def _setuptools_config() -> dict[str, object]:
    config: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]
    return config


def test_every_code_package_is_listed_and_data_is_mapped() -> None:
    """pyproject lists packages by hand (to map patches/ and containers/ into harness/):
    a new package left out of that list would be missing from every install."""
    config = _setuptools_config()
    listed = set(config["packages"])  # type: ignore[call-overload]
    found = set(find_packages(str(ROOT), include=["harness*", "tokens*"]))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == set(DATA_PACKAGES)
    assert config["package-dir"] == {"": ".", **DATA_PACKAGES}


def _copy_checkout(dest: Path) -> Path:
    """The files git tracks (plus what this change adds), without caches or build leftovers."""
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in tracked.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(sdist, wheel built from that sdist), built offline with this environment's setuptools."""
    work = tmp_path_factory.mktemp("dist")
    tree = _copy_checkout(work / "tree")
    out = work / "out"
    build_sdist = "import sys; from setuptools import build_meta as b; b.build_sdist(sys.argv[1])"
    subprocess.run([sys.executable, "-c", build_sdist, str(out)], cwd=tree, check=True,
                   capture_output=True)
    (sdist,) = out.glob("*.tar.gz")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(sdist)],
                   check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    yield sdist, wheel


def _series_files() -> set[str]:
    return {str(p.relative_to(ROOT)) for p in (ROOT / "patches").rglob("*") if p.is_file()}


def test_sdist_and_wheel_carry_the_data_and_the_licence(
        distributions: tuple[Path, Path]) -> None:
    sdist, wheel = distributions
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        in_sdist = {n.removeprefix(f"{top}/") for n in tar.getnames()}
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
    series = _series_files()
    assert any(f.endswith(".patch") for f in series) and "patches/series.toml" in series
    assert series <= in_sdist
    assert {"containers/Dockerfile", "LICENSE"} <= in_sdist
    assert {f"harness/{f}" for f in series} <= in_wheel
    assert {"harness/containers/Dockerfile", "harness/containers/postfix.Dockerfile",
            "harness/containers/dovecot.Dockerfile"} <= in_wheel
    licence = [n for n in in_wheel if n.endswith(".dist-info/licenses/LICENSE")]
    assert licence, "no licence file in the wheel's metadata"
    with zipfile.ZipFile(wheel) as whl:
        assert b"GNU GENERAL PUBLIC LICENSE" in whl.read(licence[0])


@pytest.fixture(scope="module")
def installed(distributions: tuple[Path, Path],
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel; its dependencies come from this environment (offline)."""
    env_dir = tmp_path_factory.mktemp("venv") / "fresh"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True, check=True)
    # this environment's site dirs, appended after the venv's own: the wheel's harness wins
    deps = [p for p in (*site.getsitepackages(), site.getusersitepackages()) if Path(p).is_dir()]
    (Path(purelib.stdout.strip()) / "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                    "--no-deps", "--no-index", str(distributions[1])],
                   check=True, capture_output=True)
    return env_dir


def _run(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(env_dir / "bin" / "fetchmail-harness"), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_package_reads_its_own_data(installed: Path, tmp_path: Path) -> None:
    probe = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import harness, harness.paths as p; print(harness.__file__); print(p.PATCHES_DIR);"
         "print(p.CONTAINERS_DIR)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    module, patches, containers = probe.stdout.split()
    assert Path(module).is_relative_to(installed), "the checkout's harness was imported"
    assert Path(patches).is_relative_to(installed) and Path(containers).is_relative_to(installed)
    assert (Path(patches) / "series.toml").is_file() and (Path(containers) / "Dockerfile").is_file()
    assert not Path(patches).is_relative_to(paths.PROJECT_ROOT)


def test_installed_cli_works_outside_the_checkout(
        installed: Path, tmp_path: Path, fetchmail_upstream: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FETCHMAIL_UPSTREAM", fetchmail_upstream)
    versions = _run(installed, tmp_path, "versions")
    assert versions.returncode == 0, versions.stderr
    mapping = {line.split()[0]: line.split()[1] for line in versions.stdout.splitlines()
               if not line.startswith("WARNING")}
    assert mapping["6.4.33"] == "oauth64" and mapping["next"] == "native"
    covered = [v for v, s in mapping.items() if s not in ("uncovered", "native")]
    assert len(covered) > len(mapping) // 2, versions.stdout

    applied = _run(installed, tmp_path, "apply", "6.4.33")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "oauth64" in applied.stdout and "failed" not in applied.stdout

    helped = _run(installed, tmp_path, "build", "--help")
    assert helped.returncode == 0 and "--distro" in helped.stdout
