"""Argument checks shared by every plugin: fail early, name the parameter and what is allowed."""

from __future__ import annotations

import math
import numbers


class ConfigError(ValueError):
    """A configuration (target, params, YAML) that cannot be turned into an object."""


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def real(name: str, value, *, positive: bool = False, nonnegative: bool = False, finite: bool = True) -> float:
    """Return ``value`` as a Python float, or raise naming ``name`` and the allowed range."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def integer(name: str, value, *, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise naming ``name`` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def choice(name: str, value, allowed) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise listing them."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value
