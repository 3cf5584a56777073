"""ase_jax installed from a wheel, as `pip install git+URL` (Colab) or `pip install .` installs it, runs
without its checkout: the configs, the characters' MJCFs and the bundled motions travel inside the
package.

The wheel is built without build isolation (no downloads: setuptools and wheel come with the dev
extras) from the files git would clone, and installed with --no-deps into a fresh virtual
environment that sees this environment's installed packages (jax, mujoco, ...) but not the checkout.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TEST_CACHE_DIR


def _cloned_files(dest: Path) -> Path:
    """A copy of the files `git clone` would bring (tracked, and untracked but not ignored, so that a
    change not yet committed is tested too): a build in the checkout itself would reuse a stale
    `build/` folder."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("building the wheel copies the files git tracks: this is not a git checkout")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _outside_paths() -> list[str]:
    """This interpreter's package folders that a venv made with --system-site-packages would not see
    (those of this virtual environment, PYTHONPATH's), less the checkout's own source folders (the
    tests folder, PYTHONPATH=checkout). A virtual environment inside the checkout (CI's .ci-venv) is
    kept: its site-packages holds jax. The base interpreter's own folders the venv sees already."""
    base = Path(sys.base_prefix).resolve()
    keep = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if not path.is_dir() or path == base or base in path.parents:
            continue
        in_checkout = path == REPO_ROOT or REPO_ROOT in path.parents
        if in_checkout and path.name not in ("site-packages", "dist-packages"):
            continue
        keep.append(str(path))
    return keep


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = _cloned_files(tmp_path_factory.mktemp("clone"))
    out = tmp_path_factory.mktemp("wheels")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    (built,) = out.glob("ase_jax-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_python(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; this environment's packages are
    visible through a .pth file (a venv made from a venv would see only the base interpreter's)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    Path(site, "outer_environment.pth").write_text("\n".join(_outside_paths()) + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return python


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(TEST_CACHE_DIR)}


@pytest.mark.timeout(900)
def test_the_installed_wheel_pretrains_outside_the_checkout(venv_python, tmp_path):
    """`python -m ase_jax.pretrain --config=tiny` from a folder outside the checkout, with the
    package imported from the new environment: the config, the MJCF and the bundled motions are
    found inside it (before they were looked up beside the package: "known configs: []")."""
    where = subprocess.run([str(venv_python), "-c", "import ase_jax; print(ase_jax.__file__)"], cwd=tmp_path,
                           env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-3000:]
    assert Path(where.stdout.strip()).is_relative_to(venv_python.parents[1]), where.stdout
    workdir = tmp_path / "run"
    proc = subprocess.run([str(venv_python), "-m", "ase_jax.pretrain", "--config=tiny", f"--workdir={workdir}"],
                          cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=840)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2"]
    assert "7 clips" in proc.stdout  # the bundled dataset, from the installed package


def test_the_wheel_carries_every_data_file(wheel):
    """Every file of the data folders the package looks up lies in the wheel, at the place
    `package_data.data_path` looks for it."""
    from ase_jax.package_data import DATA_FOLDERS, PACKAGED

    names = set(zipfile.ZipFile(wheel).namelist())
    inside = PACKAGED.relative_to(PACKAGED.parents[1]).as_posix()  # ase_jax/_data
    for folder in DATA_FOLDERS:
        files = sorted(p for p in (REPO_ROOT / folder).iterdir() if p.is_file())
        assert files, folder
        for path in files:
            assert f"{inside}/{path.relative_to(REPO_ROOT).as_posix()}" in names, path
    assert not any(name.endswith(".py") and "/_data/" in name for name in names)  # data only, no scripts
