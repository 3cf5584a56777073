"""Trace summaries for `python -m ase_jax.bench train --profile=DIR` (synthetic traces, no jax)."""

import gzip
import json

import pytest

from ase_jax import profiling


def _write_trace(folder, events, processes):
    run = folder / "plugins" / "profile" / "run1"
    run.mkdir(parents=True)
    meta = [{"ph": "M", "name": "process_name", "pid": pid, "args": {"name": name}} for pid, name in processes.items()]
    with gzip.open(run / "perfetto_trace.json.gz", "wt") as f:
        json.dump({"traceEvents": meta + events}, f)


def _x(name, ts, dur, pid=1, tid=1):
    return {"ph": "X", "name": name, "ts": ts, "dur": dur, "pid": pid, "tid": tid}


def test_nested_cpu_events_count_their_own_time_once(tmp_path):
    events = [_x("ThunkExecutor::Execute", 0, 100), _x("while.1", 10, 80), _x("dot.2", 20, 30),
              _x("fusion.3", 60, 20), _x("dot.2", 200, 10), _x("$python.py:1 f", 0, 500),
              _x("fusion.3", 5, 5, tid=2)]
    _write_trace(tmp_path, events, {1: "/host:CPU"})
    ops = {op["name"]: op for op in profiling.top_ops(profiling.op_times(tmp_path))}
    assert ops["dot.2"]["total_ms"] == pytest.approx(0.040) and ops["dot.2"]["count"] == 2
    assert ops["while.1"]["total_ms"] == pytest.approx(0.030)  # 80 minus the 30 + 20 inside it
    assert ops["ThunkExecutor::Execute"]["total_ms"] == pytest.approx(0.020)
    assert ops["fusion.3"]["total_ms"] == pytest.approx(0.025)  # the other thread's 5 us counted too
    assert not any(name.startswith("$") for name in ops)
    assert sum(op["share"] for op in ops.values()) == pytest.approx(1.0, abs=1e-3)


def test_device_timelines_are_preferred_when_present(tmp_path):
    events = [_x("host_op", 0, 1000, pid=1), _x("loop_fusion", 0, 30, pid=2), _x("gemm", 40, 60, pid=2)]
    _write_trace(tmp_path, events, {1: "/host:CPU", 2: "/device:GPU:0"})
    ops = profiling.top_ops(profiling.op_times(tmp_path))
    assert [op["name"] for op in ops] == ["gemm", "loop_fusion"]
    assert ops[0]["share"] == pytest.approx(2 / 3, abs=1e-3)


def test_missing_trace_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="perfetto_trace.json.gz"):
        profiling.op_times(tmp_path)


def test_operation_kinds_add_up_their_instances(tmp_path):
    events = [_x("dot_general.1", 0, 10), _x("dot_general.22", 20, 30), _x("loop_add_fusion_3", 60, 5),
              _x("loop_add_fusion", 70, 5), _x("cholesky.7", 80, 1)]
    _write_trace(tmp_path, events, {1: "/host:CPU"})
    kinds = {op["name"]: op for op in profiling.top_ops(profiling.op_times(tmp_path), by_kind=True)}
    assert set(kinds) == {"dot_general", "loop_add_fusion", "cholesky"}
    assert kinds["dot_general"]["total_ms"] == pytest.approx(0.040) and kinds["dot_general"]["count"] == 2
    assert kinds["loop_add_fusion"]["count"] == 2
