"""The one part of packaging pyproject.toml cannot state: the data folders at the top of the repository
(configs/, humanoid_xml/, motions/bundled/: ase_jax.package_data.DATA_FOLDERS) travel inside the
installed package, as ase_jax/_data/<the same path>, so that a wheel (`pip install .`, `pip install
git+URL` on Colab) runs without a checkout.

The folders stay where they are, the one copy in the repository, and setuptools' own `package_dir`
maps each onto a package name under ase_jax._data: wheels and sdists built by any front end (pip,
python -m build) carry them with no build step of ours to keep working. An editable install copies
nothing (its import hook maps these names onto the checkout's folders), so there ase_jax/_data does
not exist and ase_jax.package_data finds the checkout's folders.
"""

import runpy
from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).resolve().parent
# Read from the module itself (not imported: that would import the package at build time).
DATA_FOLDERS = runpy.run_path(str(HERE / "ase_jax" / "package_data.py"))["DATA_FOLDERS"]
DATA_PACKAGES = {"ase_jax._data." + folder.replace("/", "."): folder for folder in DATA_FOLDERS}

setup(
    # Namespace discovery: folders of data files inside the package (motions/manifests) count too.
    packages=[*find_namespace_packages(include=["ase_jax", "ase_jax.*"], exclude=["*.__pycache__"]), *DATA_PACKAGES],
    package_dir=DATA_PACKAGES,
    package_data={"ase_jax.motions.manifests": ["*.json"], **{name: ["*"] for name in DATA_PACKAGES}},
)
