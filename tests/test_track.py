"""`python -m ase_jax.motions track`: how well the character follows clips with its PD drive."""

import json

import pytest

from ase_jax.motions.__main__ import main
from ase_jax.motions.track import track_dataset
from conftest import BUNDLED_YAML

IDLE = BUNDLED_YAML.parent / "idle.npy"
WALK = BUNDLED_YAML.parent / "walk_forward.npy"


def test_track_follows_a_clip_and_shows_a_torque_starved_character():
    """With the gear as torque limit the walk is followed to a couple of degrees; with 3% of it the
    drives saturate most of the time and the joints fall far behind."""
    _, reports, total = track_dataset(WALK)
    assert len(reports) == 1 and reports[0].control_steps == round(reports[0].seconds * 30)
    assert total.joint_error_deg < 2.0 and total.key_body_error_cm < 5.0 and total.saturated_share < 0.3
    _, _, weak = track_dataset(WALK, torque_limit="0.03")
    assert weak.joint_error_deg > 4 * total.joint_error_deg and weak.saturated_share > 0.8


def test_track_cli_prints_json_for_a_clip(capsys):
    assert main(["track", str(IDLE), "--json", "--no_self_collision"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["character"] == "sword_shield" and out["self_collision"] is False
    assert out["clips"][0]["name"] == "idle" and out["total"]["joint_error_deg"] < 2.0


@pytest.mark.parametrize("bad", ["missing", "corrupt", "torque"])
def test_track_bad_input_is_one_clear_error(tmp_path, capsys, bad):
    path, extra = tmp_path / "missing.npy", []
    if bad == "corrupt":
        path = tmp_path / "corrupt.npy"
        path.write_bytes(b"\x93NUMPY garbage")
    if bad == "torque":
        path, extra = IDLE, ["--pd_torque_limit=strong"]
    assert main(["track", str(path), *extra]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and (path.name in err or "'gear'" in err) and "Traceback" not in err
