"""Forecast step lists written by people: ``"0-12"``, ``"0-12/3"``, ``"0,3,6"``, mixes."""

from __future__ import annotations

from framecast.errors import SpecError


def parse_steps(text: str) -> list[int]:
    """Steps from ``"0-12"``, ``"0-12/3"``, ``"0,3,6"`` or combinations (``"0-6,9-24/3"``)."""
    steps: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            rng, _, stride = part.partition("/")
            lo, _, hi = rng.partition("-")
            a, b = int(lo), int(hi) if hi else int(lo)
            by = int(stride) if stride else 1
        except ValueError:
            raise SpecError(f"steps: cannot parse {part!r} (use 0-12, 0-12/3 or 0,3,6)") from None
        if a < 0 or b < a or by < 1:
            raise SpecError(f"steps: bad range {part!r} (need 0 <= start <= end, stride >= 1)")
        steps.update(range(a, b + 1, by))
    if not steps:
        raise SpecError(f"steps: no steps in {text!r}")
    return sorted(steps)
