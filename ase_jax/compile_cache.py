"""Programs compiled once per process and reused: a small bounded cache, one per kind of program
(the training functions of a config, a loaded model's playback rollout), all dropped together by
`clear_all`.

Bounded because XLA:CPU keeps every executable's code mapped while a cache holds it (2,000-5,000
memory maps for one training iteration) and Linux allows a process 65,530 maps: a notebook or a
test session that trains many configs would otherwise run out. jax's own caches hold compiled
programs too; `clear_all` is called beside `jax.clear_caches()`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable

_CACHES: list["CompileCache"] = []


class CompileCache:
    """The `max_entries` most recently used values of `build()` by key."""

    def __init__(self, what: str, max_entries: int):
        self.what, self.max_entries = what, max_entries
        self._entries: OrderedDict = OrderedDict()
        _CACHES.append(self)

    def get(self, key: Hashable, build: Callable[[], object]):
        if key in self._entries:
            self._entries.move_to_end(key)
        else:
            self._entries[key] = build()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return self._entries[key]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def clear_all() -> None:
    """Drops every cache's programs (with `jax.clear_caches()`, all of them)."""
    for cache in _CACHES:
        cache.clear()
