"""Rewrite tests/core/reference/*.png from the current renderer (``make update-reference``).

Run only after an intended change of the charts' look, then look at the images before
committing them: the comparison in test_render.py never writes them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    sys.path.insert(0, str(HERE.parent))
    import conftest  # noqa: F401  (offline geography, native library order)

    spec = importlib.util.spec_from_file_location("framecast_test_render", HERE / "test_render.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from framecast.render.encode import encode_png

    mod.REFERENCE.mkdir(exist_ok=True)
    for product, region, grid in mod.REFERENCE_CASES:
        path = mod.REFERENCE / f"{product}_{region}.png"
        path.write_bytes(encode_png(mod.reference_image(product, region, grid)))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
