"""Shared test setup: JAX's persistent compilation cache and session-scoped fixtures.

MJX programs take tens of seconds to compile on a 2-core CPU, so every compiled program is built
once per session (session-scoped fixtures) and cached on disk across sessions (ASE_JAX_TEST_CACHE,
default `.jax_cache/` in the repo, which is git-ignored).
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import jax
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DATA = REPO_ROOT.parent / "shared" / "reference" / "ase_data"
REALLUSION_YAML = REFERENCE_DATA / "motions" / "reallusion_sword_shield" / "dataset_reallusion_sword_shield.yaml"
BUNDLED_YAML = REPO_ROOT / "motions" / "bundled" / "dataset.yaml"



def _machine_tag() -> str:
    """jax version + a hash of the CPU's model and feature flags.

    XLA:CPU cache entries are native code for the CPU that compiled them; loading one on a CPU with
    other features can crash the process, so each machine (and jax version) gets its own folder.
    """
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        lines = [l for l in cpuinfo.splitlines() if l.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = [platform.processor()]
    digest = hashlib.sha1("\n".join([platform.machine(), *lines]).encode()).hexdigest()[:12]
    return f"jax{jax.__version__}-{digest}"


TEST_CACHE_DIR = Path(os.environ.get("ASE_JAX_TEST_CACHE", str(REPO_ROOT / ".jax_cache"))) / _machine_tag()
jax.config.update("jax_compilation_cache_dir", str(TEST_CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# The order in which the two test processes get the test files (pytest-xdist hands out whole files
# in collection order: `--dist loadfile --no-loadscope-reorder` in pyproject.toml). Its default
# ordered files by their number of tests, so both processes started on a file that compiles the
# tiny humanoid's training step (test_bench_learn, test_corrupt_readers) and compiled it twice at
# once, about 200 s of one core (BENCHMARKS.md, "Tests"). Here the longest files go first (fewer
# minutes with one process idle at the end), the first two not sharing programs: test_render builds
# the session's tiny runs while test_env and test_amp compile their own programs, and the files that
# use the tiny step come after them. Files not named keep their order, after these.
FIRST_FILES = ("test_render", "test_env", "test_bench_learn", "test_amp", "test_corrupt_readers", "test_perturb",
               "test_warp", "test_skill_judge", "test_termination", "test_reliability", "test_pretrain",
               "test_toy_learning", "test_tasks", "test_skill_levers", "test_play_mujoco", "test_notebooks",
               "test_plan", "test_stop_resume", "test_value_clamp", "test_install", "test_motion_library",
               "test_bvh_import", "test_distributed", "test_character")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(FIRST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a file's tests keep their order


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drops jax's compiled programs after each test module. XLA:CPU keeps every executable's code
    mapped while jax's caches hold it (thousands of memory maps per training iteration), and a
    process may hold only 65,530 maps: without this, a whole-suite run dies with a segfault in
    whatever loads the next program. Later modules reload from the persistent cache."""
    yield
    import gc

    from ase_jax import compile_cache

    compile_cache.clear_all()
    jax.clear_caches()
    gc.collect()


def require_reference_data() -> Path:
    """The ASE reference data folder, or a visible skip when this checkout has none beside it."""
    if not REALLUSION_YAML.is_file():
        pytest.skip(f"ASE reference data not found at {REFERENCE_DATA} (expected ../shared beside the repo)")
    return REFERENCE_DATA


@pytest.fixture(scope="session")
def sword_shield():
    from ase_jax.character import load_character

    return load_character("sword_shield")


@pytest.fixture(scope="session")
def amp_humanoid():
    from ase_jax.character import load_character

    return load_character("amp_humanoid")


@pytest.fixture(scope="session")
def reallusion_dataset(sword_shield):
    require_reference_data()
    from ase_jax.motions.dataset import load_dataset

    return load_dataset(REALLUSION_YAML, sword_shield)


@pytest.fixture(scope="session")
def reallusion_lib(reallusion_dataset, sword_shield):
    from ase_jax.motions.library import build_motion_lib

    return build_motion_lib(reallusion_dataset, sword_shield)


def built_once(tmp_path_factory, name: str, build) -> tuple[Path, dict]:
    """(folder, summary): `build(folder) -> summary` (a dict of floats) run once per test session.

    Under pytest-xdist every worker is a process with its own session fixtures, so a fixture that
    trains would train once per worker. Here the first worker to ask builds the folder in the
    workers' shared temporary folder, under a file lock, and the others wait for it and read it
    (the pytest-xdist recipe for session fixtures). The users only read these folders, or copy them
    before changing anything. A build that failed leaves no done-marker, and the next asker builds
    afresh, so a failure surfaces in each test that needs the folder."""
    import fcntl
    import json
    import shutil

    if os.environ.get("PYTEST_XDIST_WORKER") is None:  # one process: nothing to share
        folder = tmp_path_factory.mktemp(name)
        return folder, build(folder)
    shared = tmp_path_factory.getbasetemp().parent
    folder, done = shared / name, shared / f"{name}.done.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the build raises
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a failed build's leftovers
            folder.mkdir()
            done.write_text(json.dumps(build(folder)))
    return folder, json.loads(done.read_text())


@pytest.fixture(scope="session")
def tiny_pretrained_run(tmp_path_factory):
    """A one-iteration `tiny` pre-training run folder, shared by the playback and task tests."""
    import io

    from rich.console import Console

    from ase_jax.config import load_config
    from ase_jax.pretrain import train

    def build(workdir):
        train(load_config("tiny", {"workdir": str(workdir), "total_steps": 32}), console=Console(file=io.StringIO()))
        return {}

    return built_once(tmp_path_factory, "tiny_pretrained_run", build)[0]


@pytest.fixture(scope="session")
def tiny_heading_run(tiny_pretrained_run, tmp_path_factory):
    """(folder, last metrics) of a one-iteration `task_tiny` heading run on the tiny pre-trained LLC."""
    import io

    from rich.console import Console

    from ase_jax.config import load_config
    from ase_jax.task import train

    def build(workdir):
        config = load_config("task_tiny", {"name": "heading", "llc": str(tiny_pretrained_run), "workdir": str(workdir)})
        return {k: float(v) for k, v in train(config, console=Console(file=io.StringIO())).items()}

    return built_once(tmp_path_factory, "tiny_heading_run", build)


# Ways a checkpoint folder (`.../checkpoints/N`) gets damaged, in place: a copy cut short, a
# metadata file overwritten, the array data lost. For the tests of reading and resuming.
def _truncate_checkpoint_arrays(folder: Path) -> None:
    for victim in [p for p in (folder / "state").rglob("*") if p.is_file() and p.stat().st_size > 0]:
        victim.write_bytes(victim.read_bytes()[: max(1, victim.stat().st_size // 3)])


def _lose_checkpoint_array_files(folder: Path) -> None:
    """The data files of orbax's OCDBT store (`d/` folders), as a copy interrupted before them leaves it."""
    files = [p for p in (folder / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files
    for victim in files:
        victim.unlink()


CHECKPOINT_DAMAGE = {
    "truncated arrays": _truncate_checkpoint_arrays,
    "garbage layout JSON": lambda folder: (folder / "layout" / "metadata").write_text('{"format": 2, "leaves": {'),
    "garbage config JSON": lambda folder: (folder / "config" / "metadata").write_text('{"command": "pretrain", "env": {'),
    "missing array files": _lose_checkpoint_array_files,
}
