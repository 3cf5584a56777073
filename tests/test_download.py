"""`python -m ase_jax.motions download`: manifests, verified downloads, skips and failures.

Downloads come from file:// URLs into the reference copy beside the repo (../shared/reference/ase_data)
and land in tmp_path, never in the real home cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ase_jax.errors import MotionFileError
from ase_jax.motions import download as dl

REFERENCE_MOTIONS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ase_data" / "motions"
SUBSET = ["RL_Avatar_Atk_2xCombo01_Motion.npy", "RL_Avatar_Idle_Ready_Motion.npy", "README.txt"]


@pytest.fixture
def reference() -> Path:
    if not (REFERENCE_MOTIONS / "reallusion_sword_shield").is_dir():
        pytest.skip(f"ASE reference data not found at {REFERENCE_MOTIONS} (expected ../shared beside the repo)")
    return REFERENCE_MOTIONS


@pytest.fixture(autouse=True)
def no_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ASE_JAX_CACHE", str(tmp_path / "env_cache"))


def test_manifest_lists_the_reallusion_set():
    names = [e.name for e in dl.load_manifest("reallusion")]
    assert len([n for n in names if n.endswith(".npy")]) == 87
    assert {"dataset_reallusion_sword_shield.yaml", "README.txt"} <= set(names)
    assert all(len(e.sha256) == 64 and e.size > 0 for e in dl.load_manifest("reallusion"))
    assert sorted(e.name for e in dl.load_manifest("amp_humanoid")) == [
        "amp_humanoid_jog.npy", "amp_humanoid_run.npy", "amp_humanoid_walk.npy"]
    assert dl.DATASETS["reallusion"].base_url == ("https://raw.githubusercontent.com/nv-tlabs/ASE/"
                                                  "28952a3d3a42434e74a9251a14725fa4e2627b57/"
                                                  "ase/data/motions/reallusion_sword_shield/")


def test_manifest_matches_dataset_yaml(reference):
    clips = yaml.safe_load((reference / "reallusion_sword_shield" / "dataset_reallusion_sword_shield.yaml")
                           .read_text())["motions"]
    names = {e.name for e in dl.load_manifest("reallusion")}
    assert {c["file"] for c in clips} <= names


def test_write_manifest_reproduces_committed_one(reference, tmp_path):
    out = dl.write_manifest("amp_humanoid", reference, manifest_dir=tmp_path)
    assert dl.load_manifest("amp_humanoid", manifest_dir=tmp_path) == dl.load_manifest("amp_humanoid")
    assert out == tmp_path / "amp_humanoid.json"


def test_download_verifies_then_skips(reference, tmp_path):
    base = (reference / "reallusion_sword_shield").as_uri()
    folder = dl.download_dataset("reallusion", cache_dir=tmp_path / "cache", base_url=base, progress=False)
    assert folder == tmp_path / "cache" / "reallusion" / dl.ASE_COMMIT
    assert (folder / "dataset_reallusion_sword_shield.yaml").is_file()
    entries = dl.load_manifest("reallusion")
    assert sorted(p.name for p in folder.iterdir()) == sorted(e.name for e in entries)  # no temporaries left
    assert all(dl.sha256_file(folder / e.name) == e.sha256 for e in entries)

    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    # A second call downloads nothing: an unreachable base URL still succeeds and no file is rewritten.
    again = dl.download_dataset("reallusion", cache_dir=tmp_path / "cache",
                                base_url=(tmp_path / "nowhere").as_uri(), progress=False)
    assert again == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes


def test_corrupt_cached_file_is_replaced(reference, tmp_path):
    base = (reference / "reallusion_sword_shield").as_uri()
    folder = tmp_path / "cache" / "reallusion" / dl.ASE_COMMIT
    folder.mkdir(parents=True)
    (folder / SUBSET[0]).write_bytes(b"not a clip")
    dl.download_dataset("reallusion", cache_dir=tmp_path / "cache", base_url=base, progress=True, files=SUBSET)
    assert (folder / SUBSET[0]).read_bytes() == (reference / "reallusion_sword_shield" / SUBSET[0]).read_bytes()


def test_tampered_file_is_rejected_and_removed(reference, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SUBSET:
        shutil.copy(reference / "reallusion_sword_shield" / name, source / name)
    bad = source / SUBSET[1]
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))

    with pytest.raises(MotionFileError, match="sha256") as info:
        dl.download_dataset("reallusion", cache_dir=tmp_path / "cache", base_url=source.as_uri(),
                            progress=False, files=SUBSET)
    assert SUBSET[1] in str(info.value)
    expected = {e.name: e.sha256 for e in dl.load_manifest("reallusion")}[SUBSET[1]]
    assert expected in str(info.value) and dl.sha256_file(bad) in str(info.value)
    folder = tmp_path / "cache" / "reallusion" / dl.ASE_COMMIT
    assert not (folder / SUBSET[1]).exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_missing_remote_file_names_the_url(reference, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(reference / "reallusion_sword_shield" / SUBSET[0], source / SUBSET[0])
    with pytest.raises(MotionFileError) as info:
        dl.download_dataset("reallusion", cache_dir=tmp_path / "cache", base_url=source.as_uri(),
                            progress=False, files=SUBSET[:2])
    assert (source / SUBSET[1]).as_uri() in str(info.value)
    assert "download failed" in str(info.value)
    folder = tmp_path / "cache" / "reallusion" / dl.ASE_COMMIT
    assert sorted(p.name for p in folder.iterdir()) == [SUBSET[0]]


def test_cli_download(reference, tmp_path, capsys):
    from ase_jax.motions.__main__ import main

    # Default cache root comes from $ASE_JAX_CACHE (set by the autouse fixture).
    assert main(["download", "amp_humanoid", "--base-url", reference.as_uri(), "--no-progress"]) == 0
    folder = tmp_path / "env_cache" / "amp_humanoid" / dl.ASE_COMMIT
    assert (folder / "amp_humanoid_walk.npy").is_file()
    out = capsys.readouterr().out
    assert "3 files verified" in out and "amp_humanoid_walk.npy" in out

    assert main(["download", "amp_humanoid", "--cache-dir", str(tmp_path / "c2"),
                 "--base-url", (tmp_path / "nowhere").as_uri(), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "download failed" in err
