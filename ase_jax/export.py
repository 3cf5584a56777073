"""`python -m ase_jax.export --checkpoint=RUN --out=DIR`: a trained policy as ONNX files plus a JSON.

Writes into DIR:

    llc.onnx      the low-level policy: (obs, z) -> (action, pd_target); the observation normaliser
                  and the latent's unit normalisation are inside the graph (a plain AMP run,
                  latent_dim 0: obs -> (action, pd_target), no z input)
    hlc.onnx      task runs only: the high-level controller, obs -> latent (a unit z for llc.onnx),
                  or, for a --scratch task run, obs -> (action, pd_target)
    policy.json   what the graphs expect: observation layout, action -> PD target mapping, control
                  rate, physics steps, character and the env settings the policy was trained with

The graphs are plain ONNX (opset 17: MatMul, Add, Relu, Tanh, Clip, Concat, ...) built from the
flax parameters with the `onnx` package's helpers, so onnxruntime (or any ONNX runtime) reproduces
the JAX policy's deterministic action to float32 rounding (tests/test_export.py). docs/export.md
describes the graphs and the JSON. Needs the optional extra: `pip install -e '.[export]'`.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np

from ase_jax.errors import AseInputError
from ase_jax.inference.policy_file import HLC_FILE, JSON_FILE, LLC_FILE
from ase_jax.inference.policy_loading import load_policy

OPSET = 17
IR_VERSION = 8  # the oldest IR that opset 17 allows, so that older runtimes load the files too


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as e:
        raise AseInputError(f"exporting needs the 'onnx' package ({e}): pip install -e '.[export]' "
                            "(or pip install onnx onnxruntime)") from None
    return onnx, helper, numpy_helper


# --- graph building --------------------------------------------------------------------------------


class _Graph:
    """A tiny builder over onnx.helper: named constants (initializers) and nodes with fresh names."""

    def __init__(self):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.nodes, self.initializers, self._count = [], [], 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str) -> str:
        name = self._name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs, hint: str | None = None, output: str | None = None, **attrs) -> str:
        output = output or self._name(hint or op.lower())
        self.nodes.append(self.helper.make_node(op, list(inputs), [output], **attrs))
        return output

    def dense(self, x: str, layer: dict, hint: str) -> str:
        """x @ kernel + bias, as flax's nn.Dense."""
        y = self.node("MatMul", [x, self.const(layer["kernel"], f"{hint}_kernel")], f"{hint}_matmul")
        return self.node("Add", [y, self.const(layer["bias"], f"{hint}_bias")], hint)

    def mlp(self, x: str, layers: list[dict], hint: str, activate_final: bool = False) -> str:
        """Dense layers with ReLU between them (brax's MLP and the HLC's MLP)."""
        for i, layer in enumerate(layers):
            x = self.dense(x, layer, f"{hint}_{i}")
            if i < len(layers) - 1 or activate_final:
                x = self.node("Relu", [x], f"{hint}_{i}_relu")
        return x

    def normalize_obs(self, x: str, mean, std, clip: float | None) -> str:
        """(x - mean) / std, clipped to +-clip: brax's running_statistics.normalize."""
        x = self.node("Sub", [x, self.const(mean, "obs_mean")], "obs_centered")
        x = self.node("Div", [x, self.const(std, "obs_std")], "obs_scaled")
        if clip is not None:
            x = self.node("Clip", [x, self.const(-clip, "obs_clip_lo"), self.const(clip, "obs_clip_hi")],
                          "obs_normalized")
        return x

    def clip(self, x: str, lo: float, hi: float, output: str | None = None) -> str:
        return self.node("Clip", [x, self.const(lo, "clip_lo"), self.const(hi, "clip_hi")], "clip", output)

    def unit(self, x: str, eps: float, output: str | None = None) -> str:
        """x / max(|x|, eps) along the last axis."""
        norm = self.node("ReduceL2", [x], "norm", axes=[-1], keepdims=1)
        norm = self.node("Max", [norm, self.const(eps, "norm_eps")], "norm_safe")
        return self.node("Div", [x, norm], "unit", output)

    def pd_target(self, action: str, offset, scale) -> str:
        scaled = self.node("Mul", [action, self.const(scale, "pd_scale")], "pd_scaled")
        return self.node("Add", [scaled, self.const(offset, "pd_offset")], output="pd_target")

    def model(self, name: str, inputs: dict, outputs: dict, doc: str):
        helper, onnx = self.helper, self.onnx
        tensor = lambda n, size: helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["batch", size])
        graph = helper.make_graph(self.nodes, name, [tensor(n, s) for n, s in inputs.items()],
                                  [tensor(n, s) for n, s in outputs.items()], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ase_jax",
                                  doc_string=doc)
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def _layers(params: dict, prefix: str = "hidden_") -> list[dict]:
    """The Dense layers {kernel, bias} of an MLP's params in order (hidden_0, hidden_1, ..., then `out`)."""
    names = sorted((k for k in params if k.startswith(prefix)), key=lambda k: int(k[len(prefix):]))
    layers = [params[k] for k in names] + ([params["out"]] if "out" in params else [])
    return [{k: np.asarray(v, np.float32) for k, v in layer.items()} for layer in layers]


def llc_model(pretrained, character):
    """ONNX model of `Pretrained.action` (clip(mu(normalised obs, z), -1, 1)) and its PD targets.

    z is normalised to unit length inside the graph: the policy was trained on unit latents, and
    the JAX code only ever gives it unit latents (for those the normalisation changes nothing)."""
    g = _Graph()
    actor = pretrained.params["actor"]["params"]
    obs = g.normalize_obs("obs", np.asarray(pretrained.obs_norm.mean), np.asarray(pretrained.obs_norm.std),
                          pretrained.config.ppo.normalize_obs_clip)
    nets = pretrained.networks
    inputs = {"obs": nets.obs_size}
    hidden = obs
    if nets.latent_dim > 0:  # plain AMP (latent_dim 0): mu(obs), no latent input
        z = g.unit("z", 1e-12)
        style = g.node("Tanh", [g.mlp(z, _layers(actor["style"]), "style")], "style_tanh")
        hidden = g.node("Concat", [obs, style], "actor_input", axis=-1)
        inputs["z"] = nets.latent_dim
    mu = g.mlp(hidden, _layers(actor["trunk"]), "trunk")
    action = g.clip(mu, -1.0, 1.0, output="action")
    g.pd_target(action, character.pd_offset, character.pd_scale)
    return g.model("ase_llc", inputs,
                   {"action": nets.action_size, "pd_target": nets.action_size},
                   "ASE low-level policy (ase_jax): obs (raw) and latent z -> action in [-1, 1] and PD targets")


def hlc_model(policy, character):
    """ONNX model of `TaskPolicy.high_level_action`: the unit latent for the LLC, or for a scratch
    policy the action and its PD targets."""
    g = _Graph()
    actor = policy.params["actor"]["params"]
    mlp = actor[next(iter(actor))]  # HLCActor holds one MLP
    obs = g.normalize_obs("obs", np.asarray(policy.obs_norm.mean), np.asarray(policy.obs_norm.std),
                          policy.config.ppo.normalize_obs_clip)
    a = g.node("Tanh", [g.mlp(obs, _layers(mlp), "hlc")], "hlc_tanh")
    obs_size = int(np.asarray(policy.obs_norm.mean).shape[-1])
    if policy.llc is None:
        action = g.clip(a, -1.0, 1.0, output="action")
        g.pd_target(action, character.pd_offset, character.pd_scale)
        size = character.num_actions
        return g.model("ase_task_scratch", {"obs": obs_size}, {"action": size, "pd_target": size},
                       "ASE task policy trained from scratch (ase_jax): obs (raw) -> action in [-1, 1] and PD targets")
    g.unit(g.clip(a, -1.0, 1.0), 1e-6, output="latent")
    return g.model("ase_hlc", {"obs": obs_size}, {"latent": policy.llc.config.ase.latent_dim},
                   "ASE high-level controller (ase_jax): task obs (raw) -> unit latent z for the low-level policy")


# --- the JSON --------------------------------------------------------------------------------------


# --- loading and writing ---------------------------------------------------------------------------


def export(checkpoint, out) -> dict:
    """Writes llc.onnx (and hlc.onnx for a task run) and policy.json into `out`; returns policy.json's dict."""
    onnx = _onnx()[0]
    policy = load_policy(checkpoint, purpose=None)
    if policy.config is None:
        raise AseInputError(f"{checkpoint}: already an export folder; export a run folder or checkpoint")
    character = policy.character
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise AseInputError(f"--out={out}: exists and is not a folder")
    models = {}
    if policy.pretrained is not None:
        models[LLC_FILE] = llc_model(policy.pretrained, character)
    if policy.task_policy is not None:
        models[HLC_FILE] = hlc_model(policy.task_policy, character)
    meta = copy.deepcopy(policy.meta)
    if "llc" in meta:
        meta["llc"]["outputs"] = {"action": character.num_actions, "pd_target": character.num_actions}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, model in models.items():
            onnx.save(model, str(out / name))
        (out / JSON_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    except OSError as e:
        raise AseInputError(f"--out={out}: cannot write there ({e.strerror or e})") from None
    return meta


def build_parser():
    from ase_jax import cli

    parser = cli.Parser(prog="python -m ase_jax.export", description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="a run folder (latest checkpoint) or .../checkpoints/N")
    parser.add_argument("--out", required=True, help="folder to write llc.onnx, hlc.onnx (task runs), policy.json")
    return parser


def _run(args) -> int:
    meta = export(args.checkpoint, args.out)
    files = [meta[k]["file"] for k in ("llc", "hlc") if k in meta]
    print(f"{args.checkpoint} (checkpoint {meta['source']['step']}): wrote {', '.join(files)} and {JSON_FILE} "
          f"to {args.out}")
    return 0


def main(argv=None) -> int:
    from ase_jax import cli

    return cli.run(build_parser(), argv, _run)


if __name__ == "__main__":
    sys.exit(main())
