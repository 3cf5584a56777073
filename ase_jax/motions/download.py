"""`python -m ase_jax.motions download NAME`: fetch ASE's public motion data into a local cache.

Datasets (see `DATASETS`):

- `reallusion`: the 87 sword-and-shield clips ASE trains on, with `dataset_reallusion_sword_shield.yaml`
  and `README.txt`, from github.com/nv-tlabs/ASE `ase/data/motions/reallusion_sword_shield/`.
- `amp_humanoid`: the AMP humanoid walk, jog and run clips from `ase/data/motions/`.

Both are pinned to one upstream commit and land in `<cache>/<name>/<commit>/`, where `<cache>` is
`--cache-dir`, else `$ASE_JAX_CACHE`, else `~/.cache/ase_jax/motions`.

Licence: the Reallusion clips are provided courtesy of Reallusion strictly for non-commercial research
use; see the upstream `README.txt` (downloaded with them). They are therefore never committed to
this repository; only their manifests (`manifests/<name>.json`: file names, sizes, sha256) are.

Every file is checked against its manifest's size and sha256 before it is renamed into place, so a
truncated, corrupt or tampered download (or a moved upstream file) fails loudly instead of becoming
a training set that silently differs from the one ASE's results were obtained with.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import http.client
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from ase_jax import cli
from ase_jax.errors import AseInputError, MotionFileError

ASE_REPO = "nv-tlabs/ASE"
ASE_COMMIT = "28952a3d3a42434e74a9251a14725fa4e2627b57"
MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
CHUNK = 1 << 16


@dataclass(frozen=True)
class Dataset:
    """A downloadable set of files: one folder of a GitHub repository at a pinned commit."""

    name: str
    description: str
    folder: str                   # folder inside the repository, ending in "/"
    patterns: tuple[str, ...]     # which files of that folder belong to the set (fnmatch patterns)
    hint: str                     # how to use it; "{path}" is the dataset folder
    repo: str = ASE_REPO
    commit: str = ASE_COMMIT

    @property
    def base_url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.folder}"


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("reallusion", "ASE Reallusion sword-and-shield motions (non-commercial research use only)",
            "ase/data/motions/reallusion_sword_shield/", ("*.npy", "*.yaml", "README.txt"),
            "python -m ase_jax.pretrain --config=reallusion --motions={path}/dataset_reallusion_sword_shield.yaml"),
    Dataset("amp_humanoid", "AMP humanoid walk, jog and run clips",
            "ase/data/motions/", ("amp_humanoid_walk.npy", "amp_humanoid_jog.npy", "amp_humanoid_run.npy"),
            "python -m ase_jax.motions inspect {path}/amp_humanoid_walk.npy"),
)}


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    size: int
    sha256: str


def _dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise AseInputError(f"unknown dataset {name!r}; expected one of {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(name: str, source_dir: str | os.PathLike, manifest_dir: Path = MANIFEST_DIR) -> Path:
    """Write `manifests/<name>.json` from a byte-identical local copy of the dataset's folder."""
    ds = _dataset(name)
    source = Path(source_dir)
    paths = sorted(p for p in source.iterdir()
                   if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in ds.patterns))
    if not paths:
        raise AseInputError(f"{source}: no files matching {', '.join(ds.patterns)}")
    manifest = {"name": ds.name, "repo": ds.repo, "commit": ds.commit, "folder": ds.folder,
                "files": [{"name": p.name, "size": p.stat().st_size, "sha256": sha256_file(p)} for p in paths]}
    out = manifest_dir / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def load_manifest(name: str, manifest_dir: Path = MANIFEST_DIR) -> list[ManifestEntry]:
    """The files of dataset `name`, as recorded in its committed manifest."""
    ds = _dataset(name)
    data = json.loads((manifest_dir / f"{name}.json").read_text())
    if data.get("commit") != ds.commit:
        raise AseInputError(f"manifest {name}.json is for commit {data.get('commit')}, registry pins {ds.commit}")
    return [ManifestEntry(f["name"], int(f["size"]), f["sha256"]) for f in data["files"]]


def default_cache_dir() -> Path:
    return Path(os.environ.get("ASE_JAX_CACHE") or Path.home() / ".cache" / "ase_jax" / "motions")


def _fetch(url: str, entry: ManifestEntry, dest: Path, progress: Progress, total_task: TaskID) -> None:
    """Stream `url` into a temporary file beside `dest`, verify it, then rename it into place."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{entry.name}.", suffix=".part")
    tmp = Path(tmp_name)
    task = progress.add_task(entry.name, total=entry.size)
    try:
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
                        progress.update(task, advance=len(chunk))
                        progress.update(total_task, advance=len(chunk))
            except (OSError, http.client.HTTPException) as e:  # URLError, HTTPError, timeouts, truncation
                reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", e)
                raise MotionFileError(url, f"download failed ({reason})") from e
        if size != entry.size:
            raise MotionFileError(url, f"expected {entry.size} bytes, got {size} (truncated or changed upstream; "
                                       f"sha256 not checked)")
        if h.hexdigest() != entry.sha256:
            raise MotionFileError(url, f"sha256 mismatch for {entry.name}: expected {entry.sha256}, got "
                                       f"{h.hexdigest()} (corrupt or tampered download; discarded)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        progress.remove_task(task)


def download_dataset(name: str, cache_dir: str | os.PathLike | None = None, base_url: str | None = None,
                     progress: bool = True, files: Iterable[str] | None = None) -> Path:
    """Download dataset `name` into `<cache_dir>/<name>/<commit>/` and return that folder.

    base_url replaces the upstream folder URL (any urllib URL: https://, file://); files restricts the
    download to those manifest entries. Files already there with the right sha256 are skipped.
    Raises MotionFileError on a missing remote file, a network failure or a size/sha256 mismatch.
    """
    ds = _dataset(name)
    entries = load_manifest(name)
    if files is not None:
        wanted = set(files)
        unknown = wanted - {e.name for e in entries}
        if unknown:
            raise AseInputError(f"dataset {name} has no files {', '.join(sorted(unknown))}")
        entries = [e for e in entries if e.name in wanted]
    base = base_url or ds.base_url
    base = base if base.endswith("/") else base + "/"
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder.expanduser() / name / ds.commit
    folder.mkdir(parents=True, exist_ok=True)

    todo = [e for e in entries
            if not ((folder / e.name).is_file() and sha256_file(folder / e.name) == e.sha256)]
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    console = Console(stderr=True)  # keeps stdout for results; no bar when stderr is not a terminal
    with Progress(*columns, console=console, transient=True,
                  disable=not (progress and todo and console.is_terminal)) as bar:
        total = bar.add_task(f"{name}: {len(todo)} files", total=sum(e.size for e in todo))
        for e in todo:
            _fetch(base + urllib.parse.quote(e.name), e, folder / e.name, bar, total)
    return folder


def run_download(args: argparse.Namespace) -> int:
    console = Console()
    try:
        folder = download_dataset(args.name, cache_dir=args.cache_dir, base_url=args.base_url,
                                  progress=not args.no_progress)
    except AseInputError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 1
    ds = DATASETS[args.name]
    console.print(f"{ds.description}: {len(load_manifest(args.name))} files verified in {folder}", highlight=False,
                  soft_wrap=True)
    console.print(f"use them with: {ds.hint.format(path=folder)}", highlight=False, soft_wrap=True)
    return 0


def add_download_parser(subparsers) -> None:
    p = cli.add_subcommand(subparsers, "download", description=__doc__,
                           help="download a public ASE motion dataset into the local cache")
    p.add_argument("name", choices=sorted(DATASETS), help="which dataset")
    p.add_argument("--cache-dir", default=None,
                   help="cache root (default: $ASE_JAX_CACHE, else ~/.cache/ase_jax/motions)")
    p.add_argument("--base-url", default=None,
                   help="download from this folder URL instead of GitHub (https:// or file://)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_download)
