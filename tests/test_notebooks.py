"""The notebooks in notebooks/ run top to bottom in tiny mode, in order, so that they never rot.

They run in one folder, so the task and skill notebooks reuse the quick start's pre-training run, as
they do for a user (or make their own when run alone). Their kernels share the tests' compilation cache folder.
"""

import os

import pytest

from conftest import REPO_ROOT, TEST_CACHE_DIR

nbformat = pytest.importorskip("nbformat", reason="the dev extras (nbformat, nbclient, ipykernel) are not installed")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
# Each notebook takes 4-6 minutes on a 2-core CPU (a fresh kernel compiles its own programs). The
# quick start runs in every suite; the others are heavy (`python -m pytest -m heavy`).
HEAVY = {"02_task_training", "03_skill_exploration"}
PARAMS = [pytest.param(p, id=p.stem, marks=[pytest.mark.heavy] if p.stem in HEAVY else []) for p in NOTEBOOKS]


@pytest.fixture(scope="module")
def notebook_runs(tmp_path_factory):
    return tmp_path_factory.mktemp("notebook_runs")


@pytest.mark.parametrize("path", PARAMS)
def test_notebook_runs_in_tiny_mode(path, notebook_runs, monkeypatch):
    # The kernel inherits this process's environment.
    monkeypatch.setenv("ASE_JAX_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("ASE_JAX_NOTEBOOK_RUNS", str(notebook_runs))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(TEST_CACHE_DIR))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=540, kernel_name="python3",
                                     resources={"metadata": {"path": str(notebook_runs)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


TRAINING_CALLS = ("train(config)", "pretrained_llc()", "train_task(")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_says_what_to_expect_before_it_trains(path):
    """A newcomer's order: install, then the GPU check that sets MUJOCO_GL=egl on a GPU, before
    anything imports mujoco; every training cell follows a line saying how long it takes on a GPU
    and on a CPU, and prints its time."""
    cells = nbformat.read(path, as_version=4).cells
    code = [c.source for c in cells if c.cell_type == "code"]
    assert "pip\", \"install\"" in code[0] and "git+" in code[0]
    assert "nvidia-smi" in code[1] and 'os.environ.setdefault("MUJOCO_GL", "egl")' in code[1]
    assert not any(line.startswith(("from ase_jax", "import ase_jax", "import mujoco")) for c in code[:2]
                   for line in c.splitlines())
    training = [i for i, c in enumerate(cells) if c.cell_type == "code" and any(call in c.source for call in TRAINING_CALLS)]
    assert training
    for i in training:
        before = cells[i - 1]
        assert before.cell_type == "markdown" and before.source.startswith("**Time.**"), cells[i].source[:200]
        assert "GPU" in before.source and "CPU" in before.source and "minutes" in before.source
        assert "time.perf_counter() - start" in cells[i].source
