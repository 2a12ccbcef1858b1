"""Progress bars that behave in a terminal, in a log file and under ``NO_COLOR``.

* In a terminal: tqdm's bar, redrawn as it goes.
* When the output is not a terminal (a pipe, a log file, msrun's worker logs, CI): the first and the last state
  only, instead of a redraw every 0.1 s that a log keeps as a long run of ``\\r``-separated frames.
* No colour and no other escape sequence (https://no-color.org): tqdm adds colour only when asked (``colour=``),
  and these bars never ask; a ``NO_COLOR`` in the environment also overrides a caller's ``colour=``.

Jupyter is left to tqdm: ``tqdm.auto`` draws a widget there, or redraws its text bar in place.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any


def is_terminal(stream: Any) -> bool:
    """True if ``stream`` is an interactive terminal (False for pipes, files and streams without ``isatty``)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(iterable, **kwargs)`` with the behaviour above (tqdm writes to ``sys.stderr`` unless given
    ``file=``)."""
    from tqdm.auto import tqdm

    stream = kwargs.get("file") or sys.stderr
    if not is_terminal(stream) and "ipykernel" not in sys.modules:
        kwargs["mininterval"] = math.inf  # draw when created and when closed, never in between
    if os.environ.get("NO_COLOR"):
        kwargs["colour"] = None
    return tqdm(iterable, **kwargs)
