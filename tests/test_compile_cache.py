"""The compile cache: a program is built once per key, the least recently used is dropped beyond the
bound (XLA:CPU keeps each executable's memory maps while a cache holds it), and clear_all empties
every cache."""

from ase_jax.compile_cache import CompileCache, clear_all


def test_built_once_per_key_and_bounded_by_recent_use():
    built = []
    cache = CompileCache("test programs", max_entries=2)
    build = lambda name: (lambda: built.append(name) or f"program {name}")
    assert cache.get("a", build("a")) == "program a"
    assert cache.get("a", build("a")) == "program a" and built == ["a"]
    cache.get("b", build("b"))
    cache.get("a", build("a"))  # a is now the most recently used
    cache.get("c", build("c"))  # drops b, the least recently used
    assert len(cache) == 2 and built == ["a", "b", "c"]
    cache.get("a", build("a"))
    cache.get("b", build("b"))
    assert built == ["a", "b", "c", "b"]


def test_clear_all_empties_every_cache():
    first, second = CompileCache("one", 3), CompileCache("two", 3)
    first.get(1, lambda: "x")
    second.get(2, lambda: "y")
    clear_all()
    assert len(first) == 0 and len(second) == 0
