"""Forked children of the analysis must not outlive the process that forked them.

A forked child carves or writes case.db for its parent; once the parent is gone (killed, e.g. by
:func:`~bakestore.forensics.analysis.analyze_isolated`'s timeout) nothing reads what it makes, and
a case.db written into a folder without a report is misleading. Each child calls
:func:`die_with_parent` first thing after the fork.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a forked child: be SIGKILLed when the parent dies; leave now if it already has.

    ``parent``: the parent's pid, saved before the fork (if the parent died before the prctl took
    effect, the child has been re-parented and ``getppid`` differs).
    """
    if sys.platform.startswith("linux"):
        try:
            # dlopen(NULL): the running program's symbols, libc's among them (no ldconfig lookup
            # in the child, as ctypes.util.find_library would run).
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(3)


def parent_alive(parent: int) -> bool:
    """In a forked child: whether the parent that forked it is still there."""
    return os.getppid() == parent


def kill_child(pid: int) -> None:
    """SIGKILL a forked child of ours (it may have exited already); the caller reaps it."""
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
