"""Where the project's data files are: the run configs, the characters' MJCFs and the bundled motions.

In the repository they are the top-level folders `configs/`, `humanoid_xml/` and `motions/bundled/`
(the source of truth, named by the docs and by paths users type, such as
`motions/bundled/dataset.yaml`). An installed wheel (`pip install .`, `pip install git+URL`) carries
the same folders inside the package, as `ase_jax/_data/configs/` and so on (setup.py maps them
there). Every lookup goes through `data_path`, which takes the installed copy where there is one
and the checkout's folders otherwise (a source tree on PYTHONPATH, an editable install). A path a
user gives (a config's `motions`, `--motions`) is found by `resolve_path`: as given, else in the data.
"""

from __future__ import annotations

from pathlib import Path

# The folders that travel, as paths relative to the repository root (setup.py ships the same list;
# tests/test_install.py checks that the wheel carries every file of them).
DATA_FOLDERS = ("configs", "humanoid_xml", "motions/bundled")

PACKAGED = Path(__file__).resolve().parent / "_data"
CHECKOUT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """The folder that holds DATA_FOLDERS: the installed package's copy, else the checkout.

    The copy comes first: in site-packages the folder above the package is shared with every other
    installed distribution (one of which may well ship a top-level `configs/`)."""
    return PACKAGED if PACKAGED.is_dir() else CHECKOUT


def data_path(relative: str | Path) -> Path:
    """`relative` (e.g. "configs", "motions/bundled/dataset.yaml") in the project's data."""
    return data_root() / relative


def resolve_path(value: str) -> Path:
    """A path as given if it is absolute or exists from the current directory, else one of the
    project's data files (`motions/bundled/dataset.yaml`, from any folder and in an installed
    package) where that exists, else as given (an error then names the path the user typed)."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        return path
    packaged = data_path(path)
    return packaged if packaged.exists() else path

