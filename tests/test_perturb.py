"""The push evaluation (`python -m ase_jax.evaluate perturb`, ase_jax/inference/perturb.py): the push
changes the character's momentum by the impulse, the outcome rules, the counts, and bad flags."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ase_jax.evaluate import main as evaluate_main
from ase_jax.inference import perturb


def test_outcomes_follow_the_rules():
    """Hand-made records of six characters (T = 12 steps, push at step 3 or 5, a fall counts for 4
    steps after the push, get up within 4 steps of the fall, hold 2 steps)."""
    T, n = 12, 6
    fallen = np.zeros((T, n), bool)
    up = np.ones((T, n), bool)
    push_step = np.array([3, 3, 3, 3, 5, 3])
    # 0: never falls -> stayed up
    # 1: falls at 4, up again 6-7 -> recovered after 2 steps
    fallen[4:6, 1], up[4:6, 1] = True, False
    # 2: falls at 5, up only for one step at a time -> not recovered
    fallen[5:, 2] = True
    up[:, 2] = False
    up[0:5, 2] = True
    up[7, 2] = up[9, 2] = True
    # 3: falls at step 2, before its push at 3 -> fell before the push (later falls do not matter)
    fallen[2, 3], fallen[6:, 3] = True, True
    # 4: falls at 9, after its window (push 5, counts steps 5-8) -> stayed up
    fallen[9:, 4], up[9:, 4] = True, False
    # 5: falls at 3 (the push step), up from 8: 5 steps later, past the limit of 4 -> not recovered
    fallen[3:8, 5], up[3:8, 5] = True, False
    out = perturb.classify(fallen, up, push_step, observe_steps=4, recover_steps=4, hold_steps=2)
    assert out["outcome"].tolist() == [0, 1, 2, 3, 0, 2]
    assert out["fall_step"].tolist() == [-1, 4, 5, -1, -1, 3]
    assert out["recover_steps"].tolist() == [-1, 2, -1, -1, -1, -1]
    assert out["fall_after_push"].tolist() == [-1, 1, 2, -1, -1, 0]
    # with a limit of 5 steps, character 5 gets up after 5; a hold that would end past the records does not count
    out = perturb.classify(fallen, up, push_step, observe_steps=4, recover_steps=5, hold_steps=2)
    assert out["outcome"][5] == 1 and out["recover_steps"][5] == 5
    late = np.array([[True], [True], [True], [False]])  # up only at the last recorded step: no hold of 2
    assert perturb.classify(late, ~late, np.array([0]), 4, 4, 2)["outcome"].tolist() == [2]
    s = perturb.summarize(out, dt=0.5)
    assert sum(s["counts"].values()) == n and s["counts"]["recovered"] == 2
    assert s["recover_seconds"]["values"] == [1.0, 2.5] and s["recover_seconds"]["median"] == 1.75
    assert s["fall_seconds_after_push"]["mean"] == 0.5  # characters 1, 2, 5: 1, 2 and 0 steps


def test_push_acts_only_at_its_step():
    inner = lambda carry, state, t: (carry, jnp.zeros((3, 2)), t)
    dv = jnp.arange(9.0).reshape(3, 3) + 1
    act = perturb.pushing_policy(inner, jnp.array([0, 2, 2]), dv)
    for t in range(4):
        _, (actions, push), _ = act((), None, jnp.asarray(t))
        expect = np.where(np.array([0, 2, 2])[:, None] == t, dv, 0.0)
        assert actions.shape == (3, 2) and np.array_equal(push, expect)


def _momentum(model, qpos, qvel) -> np.ndarray:
    """The character's linear momentum (N s) by C MuJoCo in float64: subtree mass times subtree COM
    velocity of its root body."""
    import mujoco

    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = np.asarray(qpos, np.float64), np.asarray(qvel, np.float64)
    mujoco.mj_forward(model, data)
    mujoco.mj_subtreeVel(model, data)
    return model.body_subtreemass[1] * data.subtree_linvel[1].copy()


@pytest.mark.timeout(1500)
def test_push_changes_momentum_by_the_impulse(tiny_pretrained_run):
    """A push of J = 100 N s adds J to the character's linear momentum: at once (the state before and
    after `push`), and over a whole env step (character lifted 2 m, so nothing but gravity acts from
    outside: the pushed step's momentum change minus the unpushed one's is J, and the unpushed one's is
    -M g dt). A zero push changes nothing."""
    controller = perturb.load_controller(tiny_pretrained_run)
    env, model = controller.env, controller.env.mj_model
    mass = perturb.character_mass(env)
    assert 30 < mass < 120
    impulse = 100.0 * np.array([0.6, 0.8, 0.0])
    dv = jnp.asarray(impulse / mass, jnp.float32)
    state = env.reset(jax.random.PRNGKey(0))
    state = state.replace(data=state.data.replace(qpos=state.data.qpos.at[2].add(2.0)))
    d = state.data
    p0 = _momentum(model, d.qpos, d.qvel)
    pushed = perturb.push(state, dv).data
    # float32 qvel: |v| ~ 2 m/s rounded to 1.2e-7 relative, times 52 kg: ~1e-5 N s
    np.testing.assert_allclose(_momentum(model, pushed.qpos, pushed.qvel) - p0, impulse, atol=1e-4)
    np.testing.assert_array_equal(perturb.push(state, jnp.zeros(3)).data.qvel, d.qvel)

    action = jnp.zeros(env.action_size)

    @jax.jit
    def both(state, dv):
        return perturb.Pushed(env).step(state, (action, dv)), env.step(state, action)

    after_push, plain = both(state, dv)
    after_zero, plain_again = both(state, jnp.zeros(3))
    for a, b in zip(jax.tree.leaves(after_zero), jax.tree.leaves(plain_again)):
        np.testing.assert_array_equal(a, b)
    change = lambda s: _momentum(model, s.data.qpos, s.data.qvel) - p0
    assert not np.any(np.asarray(env.body_contacts(plain.data)))  # in the air: no contact forces
    # The same step with and without the push differs only by a uniform velocity of the whole body
    # (no contacts), so only float32 rounding separates their momentum changes: 2e-2 is 2e-4 of J.
    np.testing.assert_allclose(change(after_push) - change(plain), impulse, atol=2e-2)
    # Unpushed, gravity alone acts from outside, but semi-implicit Euler does not conserve momentum
    # exactly while the PD drive swings the limbs (the momentum rows of the mass matrix change
    # within the step): C MuJoCo, stepping the same state with the same drive, gives -15.83 N s
    # against -M g dt = -16.91 N s; the horizontal part stays near 0.
    gravity = mass * np.asarray(model.opt.gravity) * env.control_dt
    np.testing.assert_allclose(change(plain), gravity, rtol=0.1, atol=0.1)


@pytest.mark.timeout(1500)
def test_perturb_command_counts(tiny_pretrained_run, tmp_path):
    """The command on the tiny run: 4 characters pushed early (0.1-0.2 s, while the untrained policy
    still stands) with 0 and 200 N s (about 4 m/s), falls counted for 0.5 s after the push; the
    counts add up, a push cannot change what happened before it, and the strong push fells more
    characters than none. Writes JSON, plot and (where offscreen rendering works) a video."""
    from ase_jax import render

    video = tmp_path / "pushed.gif" if render.gl_problem() is None else None
    argv = ["perturb", f"--checkpoint={tiny_pretrained_run}", "--impulses=0,200", "--num_envs=4", "--seconds=0.5",
            "--recover_seconds=0.5", "--push_at=0.1,0.2", f"--out={tmp_path}"]
    assert evaluate_main(argv + ([f"--video={video}", "--video_count=2"] if video else [])) == 0
    result = json.loads((tmp_path / "perturb.json").read_text())
    assert (tmp_path / "perturb.png").stat().st_size > 1000
    if video:
        assert video.stat().st_size > 1000
    none, strong = result["impulses"]
    for row in (none, strong):
        assert sum(row["counts"].values()) == 4
        assert len(row["recover_seconds"]["values"]) == row["counts"]["recovered"]
        assert abs(sum(row["shares"].values()) - 1) < 1e-9
    assert none["counts"]["fell_before_push"] == strong["counts"]["fell_before_push"] == 0
    assert none["dv_m_per_s"] == 0 and abs(strong["dv_m_per_s"] * result["character_mass_kg"] - 200) < 1e-6
    fell = lambda row: row["counts"]["recovered"] + row["counts"]["not_recovered"]
    assert fell(strong) > fell(none)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flag, words", [
    ("--impulses=0,-50", "--impulses"),
    ("--impulses=abc", "--impulses"),
    ("--push_at=2,1", "--push_at"),
    ("--push_at=1", "--push_at"),
    ("--num_envs=0", "--num_envs"),
])
def test_bad_flags_are_refused(tmp_path, capsys, flag, words):
    assert evaluate_main(["perturb", f"--checkpoint={tmp_path}", flag, f"--out={tmp_path / 'out'}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_unknown_checkpoint_is_refused(tmp_path, capsys):
    missing = tmp_path / "no_such_run"
    assert evaluate_main(["perturb", f"--checkpoint={missing}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err, err
    assert not missing.exists()
