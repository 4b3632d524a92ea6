"""Import a helper module that lives beside a test file.

With ``--import-mode=importlib`` test folders are not packages on ``sys.path``, so a test
cannot ``import`` the helper next to it; this loads it once under a name unique to its folder.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_sibling(test_file: str, name: str) -> ModuleType:
    """The module ``name``.py in the folder of ``test_file`` (loaded once per process)."""
    folder = Path(test_file).resolve().parent
    key = f"framecast_tests_{folder.name}_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, folder / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
    return sys.modules[key]
