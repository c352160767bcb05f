"""Run ``mailbot`` so that it SIGKILLs itself at a named point: crash tests for batch edges.

``python -m testkit.kill_points TARGET N mailbot-arguments...``

*TARGET* is ``package.module:Class.method`` (or ``package.module:function``); the
process kills itself with SIGKILL when the target is entered for the *N*-th time,
before it runs. Random kills rarely land in a window of a millisecond; this puts
a real ``kill -9`` exactly there (for instance between a batch's journal marks and
its UID MOVE), with no test code in the product.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def arm(target: str, nth: int) -> None:
    """Wrap *target* so that its *nth* call kills the process."""
    module_name, _, attribute = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original: Callable[..., Any] = getattr(owner, name)
    calls = 0

    def count() -> None:
        nonlocal calls
        calls += 1
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def killing_async(*args: Any, **kwargs: Any) -> Any:
            count()
            return await original(*args, **kwargs)

        setattr(owner, name, killing_async)
    else:

        @functools.wraps(original)
        def killing(*args: Any, **kwargs: Any) -> Any:
            count()
            return original(*args, **kwargs)

        setattr(owner, name, killing)


def main() -> None:
    """``TARGET N args...``: arm the kill point, then run the ``mailbot`` program."""
    target, nth, *arguments = sys.argv[1:]
    arm(target, int(nth))
    from mailbot.cli.main import run

    sys.argv = ["mailbot", *arguments]
    run()


if __name__ == "__main__":
    main()
