"""Imports `mujoco.mjx` without its start-up chatter.

mujoco-mjx prints "Failed to import warp ..." to stdout when the optional MuJoCo Warp back end is
not installed, which is the normal case on CPU and would corrupt JSON printed by our commands.
Import mjx from here; `warp_available()` says whether `impl="warp"` can work.
"""

import contextlib
import io

with contextlib.redirect_stdout(io.StringIO()) as _chatter:
    from mujoco import mjx  # noqa: F401

_WARP_MESSAGE = _chatter.getvalue()


def warp_available() -> bool:
    return "Failed to import" not in _WARP_MESSAGE
