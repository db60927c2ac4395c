"""The one type for perturbation budgets (ε) and attack step sizes, used by every section.

A value is a number (`0.1`, `0`) or a fraction string (`"8/255"`, `"0.5/255"`, `"0.03"`).
Parsing and the range check are separate steps, because the range depends on the threat
model: an L∞ budget in pixel units lies in [0, 1], while an L2 budget is in the norm's own
units and has no such bound. `NORM_MAX` holds that per-norm bound; `check_range` is the only
place that applies it.

To add a threat model, add its norm to `NORM_MAX` and give the section a `norm` field
declared *before* its ε fields: pydantic validates fields in declaration order, and
`_in_range` reads the section's norm from the fields validated so far (`info.data`).
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo

DEFAULT_NORM = "linf"
# Largest meaningful ε per norm, in the units ε is written in (None: unbounded above).
NORM_MAX: dict[str, float | None] = {"linf": 1.0, "l2": None}
_UNITS = {"linf": "pixel units", "l2": "L2 units"}

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_FRACTION = re.compile(rf"\s*({_NUMBER})\s*(?:/\s*({_NUMBER})\s*)?")


def parse_epsilon(value: object) -> float:
    """0.1, 8, "8/255" or "0.03" -> a finite float (the range is checked separately)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number or a fraction like '8/255', got {value!r}")
    if isinstance(value, str):
        m = _FRACTION.fullmatch(value)
        if not m:
            raise ValueError(f"expected a number or a fraction like '8/255', got {value!r}")
        num, den = float(m.group(1)), float(m.group(2) or 1)
        if den == 0:
            raise ValueError(f"division by zero in {value!r}")
        value = num / den
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


def check_range(value: float, norm: str = DEFAULT_NORM) -> float:
    """The range check for an ε (or step) under `norm`: never negative, at most NORM_MAX[norm]."""
    high = NORM_MAX[norm]
    if value < 0 or (high is not None and value > high):
        bound = f"[0, {high:g}]" if high is not None else ">= 0"
        raise ValueError(f"must be in {bound} ({_UNITS.get(norm, norm)}), got {value}")
    return value


def _in_range(value: float, info: ValidationInfo) -> float:
    return check_range(value, info.data.get("norm", DEFAULT_NORM))


# A perturbation budget: `epsilons = [0, "8/255"]`, `epsilon = "8/255"`.
Epsilon = Annotated[float, BeforeValidator(parse_epsilon), AfterValidator(_in_range)]
# An attack step size: an ε that must be positive (`alpha = "2/255"`).
StepSize = Annotated[Epsilon, Field(gt=0)]
