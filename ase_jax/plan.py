"""The memory and cost plan of a pre-training config: the device memory its training step needs and
the FLOPs and bytes it moves per iteration, read from XLA's own analysis of the compiled step
(`Compiled.memory_analysis()`, `Compiled.cost_analysis()`) before anything is allocated or run.

The step is lowered for abstract inputs (`jax.eval_shape` of the init: shapes only, nothing on the
device) and compiled. Compiling costs as much at 512 envs as at 16,384 (the program's structure, not
its sizes, sets the compile time), so a plan for many env counts, or the check `pretrain` makes
compiles two small "probe" counts and extrapolates linearly in num_envs:
the env states, the rollout's trajectory and the update's batch grow with num_envs, while the
parameters, optimiser state, replay buffer and one minibatch's work do not (the probes keep the
config's minibatch_size, so that part is the same as at the count asked for). `plan(...,
direct=True)` compiles each count instead; BENCHMARKS.md, "The memory plan", compares the two.
`pretrain`'s check (`compile_checked`) compiles only the step it will train with, ahead of time, and
reads its figures before the training state is allocated.

Memory is per device (one pmapped program per device): arguments (the training state) + outputs not
aliased to them (the step donates its state, so only the metrics) + XLA's temporaries. Code size and
the allocator's fragmentation are not in it; `fits` leaves a margin for them.
"""

from __future__ import annotations

import dataclasses
import math

import jax

from ase_jax.agents.ase.train import make_train_fns
from ase_jax.config.schema import Config, to_dict
from ase_jax.errors import AseInputError

# Share of the free device memory the plan may use: XLA's figures leave out the executable's code,
# the allocator's fragmentation and the small arrays the host loop keeps (keys, metrics).
FIT_MARGIN = 0.9


@dataclasses.dataclass(frozen=True)
class StepCost:
    """XLA's figures for one compiled training step at `num_envs`, per device."""

    num_envs: int
    argument_bytes: float  # the training state passed in
    output_bytes: float  # the new state and the metrics
    alias_bytes: float  # outputs written into the (donated) input buffers
    temp_bytes: float  # XLA's temporaries: trajectory, batch, activations, gradients, physics
    flops: float
    bytes_accessed: float
    method: str  # "compiled" or "extrapolated"

    @property
    def needed_bytes(self) -> float:
        """Device memory the step needs while it runs: its inputs, its outputs that are not written
        into the inputs, and its temporaries."""
        return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes


_FIGURES = ("argument_bytes", "output_bytes", "alias_bytes", "temp_bytes", "flops", "bytes_accessed")


def env_count_unit(config: Config, num_devices: int | None = None) -> int:
    """The step between valid num_envs of `config`: a multiple of the devices whose share of
    num_envs x horizon is a multiple of minibatch_size (`ppo.split_over_devices`)."""
    devices = num_devices or jax.local_device_count()
    mb, horizon = config.ppo.minibatch_size, config.ppo.horizon
    return devices * (mb // math.gcd(mb, horizon))


# StepCosts already compiled in this process, by (computed config, num_envs, env): the probes of
# `pretrain`'s check and of `bench plan` are compiled once per process (the env is kept alive with
# its entry, so its id is not reused).
_COSTS: dict = {}
_COSTS_MAX = 8


def compile_step(config: Config, env, num_envs: int) -> StepCost:
    """XLA's memory and cost analysis of `config`'s training step at `num_envs`, compiled for
    abstract inputs (nothing is allocated on the device)."""
    config = config.replace(num_envs=num_envs)
    computed = {k: v for k, v in to_dict(config).items() if k != "run"}
    key = (repr(computed), config.run.seed, num_envs, id(env), tuple(jax.local_devices()))
    if key not in _COSTS:
        _COSTS[key] = (_compile_step(config, env, num_envs), env)
        while len(_COSTS) > _COSTS_MAX:
            _COSTS.pop(next(iter(_COSTS)))
    return _COSTS[key][0]


def _compile_step(config: Config, env, num_envs: int) -> StepCost:  # config has num_envs
    fns = make_train_fns(config, env)
    abstract_state = jax.eval_shape(fns.init, jax.random.PRNGKey(config.run.seed))
    return _cost(fns.step.lower(abstract_state).compile(), num_envs)


def _cost(compiled, num_envs: int) -> StepCost:
    """XLA's memory and cost analysis of a compiled training step."""
    memory = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per program
        cost = cost[0] if cost else {}
    cost = cost or {}
    return StepCost(num_envs, float(memory.argument_size_in_bytes), float(memory.output_size_in_bytes),
                    float(memory.alias_size_in_bytes), float(memory.temp_size_in_bytes),
                    float(cost.get("flops", math.nan)), float(cost.get("bytes accessed", math.nan)), "compiled")


@dataclasses.dataclass(frozen=True)
class LinearPlan:
    """Every figure as a line in num_envs through two compiled probes."""

    low: StepCost
    high: StepCost

    def at(self, num_envs: int) -> StepCost:
        if num_envs in (self.low.num_envs, self.high.num_envs):
            return self.low if num_envs == self.low.num_envs else self.high
        t = (num_envs - self.low.num_envs) / (self.high.num_envs - self.low.num_envs)
        values = {f: getattr(self.low, f) + t * (getattr(self.high, f) - getattr(self.low, f)) for f in _FIGURES}
        return StepCost(num_envs, method="extrapolated", **values)

    @property
    def bytes_per_env(self) -> float:
        return (self.high.needed_bytes - self.low.needed_bytes) / (self.high.num_envs - self.low.num_envs)

    @property
    def fixed_bytes(self) -> float:
        """The line's memory at zero envs: parameters, optimiser, replay buffer, one minibatch's work."""
        return self.low.needed_bytes - self.bytes_per_env * self.low.num_envs

    def largest_fitting(self, free_bytes: float, unit: int) -> int:
        """The largest multiple of `unit` envs whose need is within FIT_MARGIN of `free_bytes` (0: none)."""
        if self.bytes_per_env <= 0:
            return 0
        n = int((FIT_MARGIN * free_bytes - self.fixed_bytes) // self.bytes_per_env)
        n = (n // unit) * unit
        while n > 0 and self.at(n).needed_bytes > FIT_MARGIN * free_bytes:  # rounding
            n -= unit
        return max(n, 0)


def probe_counts(config: Config, num_devices: int | None = None) -> tuple[int, int]:
    """The two env counts compiled for a linear plan: the smallest valid count and twice it."""
    unit = env_count_unit(config, num_devices)
    return unit, 2 * unit


def linear_plan(config: Config, env) -> LinearPlan:
    low, high = probe_counts(config)
    return LinearPlan(compile_step(config, env, low), compile_step(config, env, high))


def plan(config: Config, env, counts, direct: bool = False) -> tuple[list[StepCost], LinearPlan]:
    """(a StepCost per count in `counts`, the probes' line): extrapolated from the two probes, or
    with `direct`, each count compiled (the probes are compiled either way)."""
    unit = env_count_unit(config)
    for n in counts:
        if n % unit:
            raise AseInputError(f"num_envs={n}: must be a multiple of {unit} (devices x minibatch_size / "
                                f"gcd(minibatch_size, horizon)) for this config")
    line = linear_plan(config, env)
    probes = {line.low.num_envs: line.low, line.high.num_envs: line.high}
    rows = [probes.get(n) or (compile_step(config, env, n) if direct else line.at(n)) for n in counts]
    return rows, line


def free_device_memory() -> int | None:
    """Bytes the first device's allocator can still hand out (its limit minus what is in use), or None
    where the backend keeps no such statistics (the CPU). The one source of the number, so that a
    test can fake a small device."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


GIB = 2**30


def check_fits(config: Config, env, free_bytes: int | None = None) -> LinearPlan | None:
    """`bench plan`'s check: raises AseInputError (one line: the num_envs asked for, the memory it
    needs, the memory free and the largest num_envs that fits) when the linear plan of `config`'s
    step does not fit the device's free memory. Does nothing (returns None) where the device reports
    no free memory (the CPU). Costs two compiles at the probe counts."""
    free = free_device_memory() if free_bytes is None else free_bytes
    if free is None:
        return None
    line = linear_plan(config, env)
    need = line.at(config.ppo.num_envs).needed_bytes
    if need > FIT_MARGIN * free:
        largest = line.largest_fitting(free, env_count_unit(config))
        raise AseInputError(_refusal(config, need, free, largest, line.low.num_envs, line.low.needed_bytes))
    return line


def compile_checked(config: Config, env, fns, free_bytes: int | None = None):
    """`pretrain`'s check, at no extra compile where the step fits: compiles the training step for `config`'s own
    num_envs ahead of time (for abstract inputs: nothing is allocated yet) and, where the device
    reports its free memory, refuses in one line a num_envs whose step does not fit, before the
    training state is put on the device. Returns `fns` running that compiled step (the compile the
    first iteration would have done), or `fns` unchanged where there is nothing to check (the CPU).

    The largest num_envs named in a refusal comes from the two probes' line (two more compiles, on
    that path only): a line through one compile at zero extra cost would put the fixed part of XLA's
    temporaries on every env and so understate the need of smaller counts, naming one that does
    not fit; the probes' line errs the other way (BENCHMARKS.md, "The memory plan")."""
    free = free_device_memory() if free_bytes is None else free_bytes
    if free is None:
        return fns
    n = config.ppo.num_envs
    compiled = fns.step.lower(jax.eval_shape(fns.init, jax.random.PRNGKey(config.run.seed))).compile()
    need = _cost(compiled, n).needed_bytes
    if need > FIT_MARGIN * free:
        line = linear_plan(config, env)
        unit = env_count_unit(config)
        largest = min(line.largest_fitting(free, unit), n - unit)
        raise AseInputError(_refusal(config, need, free, largest, line.low.num_envs, line.low.needed_bytes))
    return dataclasses.replace(fns, step=compiled)


def _refusal(config: Config, need: float, free: float, largest: int, smallest: int, smallest_need: float) -> str:
    fits = (f"the largest num_envs that fits is {largest}" if largest else
            f"no num_envs fits (even {smallest} needs {smallest_need / GIB:.2f} GiB): "
            "lower minibatch_size or the network sizes")
    return (f"num_envs={config.ppo.num_envs}: the training step needs {need / GIB:.2f} GiB of device memory per "
            f"device, but {jax.devices()[0].device_kind} has {free / GIB:.2f} GiB free ({FIT_MARGIN:.0%} usable); "
            f"{fits} (python -m ase_jax.bench plan)")
