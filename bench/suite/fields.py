"""Field types shared by the suite schema: bounded counts, seeds, paths, import paths.

Integers are bounded by what they are used as: every count and seed must fit a signed
32-bit integer (torch and NumPy take them as C integers; NumPy seeds must lie in
[0, 2**32)), so a typo like `steps = 1e20` is an error, not a run that never ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Collection

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

INT32_MAX = 2**31 - 1
# Larger images are a typo here (and resizing the digits to them takes gigabytes).
MAX_IMAGE_SIDE = 4096

Count = Annotated[int, Field(gt=0, le=INT32_MAX)]
NonNegativeCount = Annotated[int, Field(ge=0, le=INT32_MAX)]
# Seeds are non-negative: NumPy and scikit-learn (digits split, torch-fidelity's KID and IS)
# reject negative seeds, and derived streams (seed + 1, seed + 1_000_003) stay below 2**32.
Seed = Annotated[int, Field(ge=0, le=INT32_MAX)]
ImageSide = Annotated[int, Field(gt=0, le=MAX_IMAGE_SIDE)]
Positive = Annotated[float, Field(gt=0)]  # finite: the schema forbids inf and nan
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
ImportPath = Annotated[str, Field(pattern=rf"^{_IDENT}(\.{_IDENT})*(:{_IDENT}(\.{_IDENT})*)?$")]


def _reject_bool(value: object) -> object:
    # Literal[1, 3] matches True == 1 even in strict mode.
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


not_bool = BeforeValidator(_reject_bool)


def _usable_path(value: str) -> str:
    if "\x00" in value:
        raise ValueError(f"a path cannot contain a NUL character, got {value!r}")
    if not value.strip():
        raise ValueError("expected a path, got an empty string")
    try:
        Path(value).expanduser()
    except RuntimeError:  # "~someone/..." for a user that does not exist
        raise ValueError(f"cannot expand {value.split('/')[0]!r}: no such user") from None
    return value


PathStr = Annotated[str, AfterValidator(_usable_path)]


def used_only_with(selector: str, used_by: dict[str, Collection[str]]):
    """A validator rejecting keys that the section's `selector` value makes meaningless.

    `used_by` maps a key to the selector values that use it, e.g. {"root": ("mnist", ...)}
    for `kind`. The selector is a string or a list (any listed value that uses the key will
    do) and must be declared before those keys: fields validate in declaration order. Only
    keys the file sets are checked; defaults are never validated.
    """

    def check(cls, value, info: ValidationInfo):
        chosen = info.data.get(selector)
        if chosen is None:
            return value  # the selector itself failed validation; that error is reported
        values = chosen if isinstance(chosen, list) else [chosen]
        users = used_by[info.field_name]
        if not any(v in users for v in values):
            wanted = ", ".join(repr(u) for u in users)
            raise ValueError(f"not used with {selector} = {chosen!r} (only with {wanted}); "
                             "remove it")
        return value

    return field_validator(*used_by)(classmethod(check))
