"""Summaries of jax profiler traces: where a compiled training iteration spends its time; and the
peak memory a run has used (`peak_memory`).

`jax.profiler.trace(dir, create_perfetto_trace=True)` writes `perfetto_trace.json.gz` (Chrome trace
event format) beside the TensorBoard profile. `op_times` reads the exclusive time of each
operation, on the device timelines when there are any (GPU kernels, named after the XLA fusions
that launched them) and otherwise on the XLA:CPU threads; `top_ops` adds them up by name.
"""

from __future__ import annotations

import collections
import gzip
import json
import re
from pathlib import Path

def peak_memory() -> dict:
    """{"peak_device_bytes": n} from the first device's allocator statistics, or, where the backend
    keeps none (the CPU), {"peak_host_rss_bytes": n}: the process's peak resident memory."""
    import resource

    import jax

    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return {"peak_device_bytes": int(stats["peak_bytes_in_use"])}
    return {"peak_host_rss_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024}


# Python-level calls ("$file:line name") and host waits are not work of the compiled program.
_NOT_WORK = ("$", "Wait for", "ThunkExecutor::Execute (wait", "SlinkyThreadPool::Await")


def load_trace_events(trace_dir) -> tuple[list[dict], dict[int, str]]:
    """(complete events, process names by pid) of the newest perfetto trace under `trace_dir`."""
    files = sorted(Path(trace_dir).rglob("perfetto_trace.json.gz"), key=lambda f: f.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
    with gzip.open(files[-1], "rt") as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    names = {e["pid"]: e.get("args", {}).get("name", "") for e in events
             if e.get("ph") == "M" and e.get("name") == "process_name"}
    return [e for e in events if e.get("ph") == "X" and "dur" in e], names


def self_times(events: list[dict]) -> list[tuple[str, float]]:
    """(name, exclusive duration in us) per event: its duration minus that of the events nested in
    it on the same thread (XLA:CPU nests loop bodies and thunks; GPU kernels do not nest)."""
    out = []
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[(e["pid"], e.get("tid"))].append(e)
    for thread in by_thread.values():
        thread.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack: list[list] = []  # [name, end, self time]
        for e in thread:
            ts, dur = float(e["ts"]), float(e["dur"])
            while stack and stack[-1][1] <= ts:
                out.append(tuple(stack.pop()[::2]))
            if stack:
                stack[-1][2] -= min(dur, stack[-1][1] - ts)
            stack.append([e["name"], ts + dur, dur])
        out.extend(tuple(item[::2]) for item in stack)
    return out


def op_kind(name: str) -> str:
    """The kind of an XLA operation: its name without the instance suffix ("dot_general.1348" ->
    "dot_general", "loop_add_fusion_3" -> "loop_add_fusion")."""
    return re.sub(r"([._]\d+)+$", "", name)


def op_times(trace_dir) -> list[tuple[str, float]]:
    """(operation name, exclusive time in us) of every operation of the newest trace under
    `trace_dir`: the device timelines (GPU kernels) when the trace has them, else the XLA:CPU
    threads; Python calls and host waits left out. Read once, summarise with `top_ops`."""
    events, process_names = load_trace_events(trace_dir)
    device_pids = {pid for pid, name in process_names.items() if "/device:" in name and "CPU" not in name}
    if device_pids:
        events = [e for e in events if e["pid"] in device_pids]
    return [(name, us) for name, us in self_times(events) if not name.startswith(_NOT_WORK)]


def top_ops(times: list[tuple[str, float]], top: int = 15, by_kind: bool = False) -> list[dict]:
    """The `top` operations of `op_times` by exclusive time: [{"name", "total_ms", "share", "count"}],
    largest first. `share` is of the summed time of the operations counted, not of wall time.
    `by_kind` adds up all instances of an operation kind (every `dot_general`, every `cholesky`, ...).
    """
    totals, counts = collections.Counter(), collections.Counter()
    for name, us in times:
        name = op_kind(name) if by_kind else name
        totals[name] += us
        counts[name] += 1
    whole = sum(totals.values()) or 1.0
    return [{"name": name, "total_ms": round(us / 1e3, 3), "share": round(us / whole, 4), "count": counts[name]}
            for name, us in totals.most_common(top)]
