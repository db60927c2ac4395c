"""How numbers are shown, everywhere bench renders them (reports, compare): one policy.

Display only: stored tables keep full precision. `digits` significant digits; large values
as grouped integers; missing values as "–".

    format_number(0.98765)    -> "0.988"       format_number(190.57) -> "191"
    format_number(12345678.9) -> "12,345,679"  format_number(0.00012) -> "0.00012"
"""

from __future__ import annotations

import math


def format_number(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()  # numpy scalars
        except (ValueError, TypeError):  # arrays: shown as they are
            return str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if math.isinf(value):
        return ("+" if signed and value > 0 else "") + ("∞" if value > 0 else "-∞")
    sign = "+" if signed else ""
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits or isinstance(value, int):
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.{digits}g}"
