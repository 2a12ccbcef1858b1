"""A sampler's own parameters, declared once on its class: default, check, and nothing else to write.

``eta = options.real(1.0, nonnegative=True)`` in a sampler's class body makes ``eta`` a constructor parameter (in
declaration order, base classes' first) with that default, checked by :mod:`edm_sampler.checks` when the sampler is
built, stored as ``self.eta`` and shown in the repr. The options every sampler shares (schedule, guider, steps...)
come after them, keyword-only, from :class:`~edm_sampler.samplers.base.BaseDiffusionSampler`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from .. import checks


class Option:
    """One declared parameter: its default and the check that turns a value into the stored one."""

    def __init__(self, default: Any, check: Callable[[str, Any], Any], doc: str = ""):
        self.default = default
        self.check = check
        self.doc = doc

    def __repr__(self) -> str:
        return f"Option(default={self.default!r})"

    if TYPE_CHECKING:  # for type checkers only: on an instance, the declared name holds the checked value

        def __get__(self, instance: Any, owner: Any = None) -> Any: ...


def real(
    default: float,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    finite: bool = True,
    maximum: float = math.inf,
    doc: str = "",
) -> Option:
    """A real-valued parameter (stored as a Python float), optionally bounded."""

    def check(name: str, value: Any) -> float:
        value = checks.real(name, value, positive=positive, nonnegative=nonnegative, finite=finite)
        if value > maximum:
            raise ValueError(f"{name} must be <= {maximum:g}{f' ({doc})' if doc else ''}, got {value!r}")
        return value

    return Option(default, check, doc)


def integer(default: int, *, minimum: int | None = None, doc: str = "") -> Option:
    """An integer parameter (stored as a Python int)."""
    return Option(default, lambda name, value: checks.integer(name, value, minimum=minimum), doc)


def choice(default: str, allowed: tuple[str, ...], doc: str = "") -> Option:
    """A parameter that takes one of ``allowed``."""
    return Option(default, lambda name, value: checks.choice(name, value, allowed), doc)


def flag(default: bool, doc: str = "") -> Option:
    """A True/False parameter (stored as a Python bool; 0/1 and strings are refused)."""

    def check(name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
        return value

    return Option(default, check, doc)


def steps(default: tuple = (), doc: str = "") -> Option:
    """A set of step indices (0-based), stored as a sorted tuple of ints (a list from YAML is accepted)."""

    def check(name: str, value: Any) -> tuple:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"{name} must be a list of step indices, got {value!r}")
        return tuple(sorted({checks.integer(f"{name}[]", v, minimum=0) for v in value}))

    return Option(tuple(default), check, doc)


def declared(cls: type) -> dict[str, Option]:
    """The options of ``cls`` in constructor order: those of its bases first, then its own in declaration order."""
    found: dict[str, Option] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Option):
                found.pop(name, None)
                found[name] = value
    return found
