"""Loads Python bindings that Debian ships outside any virtualenv (python3-libnbd,
python3-libvirt) by their module files alone.

These bindings are not on PyPI in a form that matches the system library, so the venv
cannot install them. Putting all of `/usr/lib/python3/dist-packages` on `sys.path`
would let Debian's older copies of other packages (pyOpenSSL, ...) fill every later
import gap in the process (one broke oslo.service), so `import_system_modules` loads
just the named modules from their files, in the order given (a wrapper module after
the extension it imports).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

SYSTEM_DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def import_system_modules(names: tuple[str, ...], directory: str = SYSTEM_DIST_PACKAGES) -> ModuleType:
    """Import each of `names` (a `NAME.py` or `NAME.*.so` file in `directory`) unless it
    is importable already; returns the last one. Raises ImportError naming what is missing."""
    try:
        return importlib.import_module(names[-1])
    except ImportError:
        pass
    for name in names:
        if name in sys.modules:
            continue
        try:
            files = os.listdir(directory)
        except OSError as exc:
            raise ImportError(f"cannot list {directory}: {exc.strerror}") from exc
        candidates = [f for f in files if f == f"{name}.py" or (f.startswith(f"{name}.") and f.endswith(".so"))]
        if not candidates:
            raise ImportError(f"no {name} module in {directory}")
        spec = importlib.util.spec_from_file_location(name, os.path.join(directory, candidates[0]))
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {candidates[0]}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[names[-1]]
