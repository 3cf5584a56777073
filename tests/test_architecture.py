"""The package's shape: the layer contract of pyproject.toml (docs/architecture.md) holds, no two
modules import each other in a loop, and the names the config checks agree with the registries."""

import subprocess
import sys

import grimp
import pytest

from conftest import REPO_ROOT


@pytest.mark.timeout(300)
def test_the_layer_contract_holds():
    """import-linter over pyproject.toml's contract: a module importing from a layer above its own,
    or one command importing another, fails here with the chain of imports named. (In a process of
    its own: import-linter's output machinery does not coexist with pytest's captured streams.)"""
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "1 kept, 0 broken" in proc.stdout


def _import_loops(graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each an import loop."""
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index, low, stack, on_stack, loops, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                loops.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return loops


@pytest.mark.timeout(300)
def test_no_import_loops():
    """Imports inside functions count too (grimp reads them): a loop hidden in a function is still
    one (there were config -> tasks -> env -> config and play <-> play_mujoco)."""
    assert _import_loops(grimp.build_graph("ase_jax")) == []


def test_loop_finder_finds_a_loop():
    class Graph:
        modules = {"a", "b", "c"}

        @staticmethod
        def find_modules_directly_imported_by(m):
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[m]

    assert _import_loops(Graph()) == [["a", "b"]]


def test_config_names_agree_with_the_registries():
    from ase_jax.character import CHARACTERS
    from ase_jax.config.sections import CHARACTER_NAMES, TASK_NAMES
    from ase_jax.tasks import TASKS

    assert sorted(CHARACTER_NAMES) == sorted(CHARACTERS) and sorted(TASK_NAMES) == sorted(TASKS)
