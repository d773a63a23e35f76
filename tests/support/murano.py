"""Murano's device library, imported the way a test may use it.

On import, murano-client replaces `sys.excepthook` with one that logs to the stream
pytest had open at that moment and reconfigures the root logger. Pytest reports
errors it finds at the end of the run through `sys.excepthook`; with the library's
hook in place they were written to a closed stream and lost. `murano_client()`
imports the library once and puts the process's hook and root logger back.
"""

import importlib
import logging
import sys
from types import ModuleType


def murano_client(module: str) -> ModuleType:
    """`murano_client.<module>`, imported without the library's process-wide changes."""
    hook = sys.excepthook
    root = logging.getLogger()
    handlers, level, propagate = list(root.handlers), root.level, root.propagate
    try:
        return importlib.import_module(f"murano_client.{module}")
    finally:
        sys.excepthook = hook
        root.handlers[:] = handlers
        root.setLevel(level)
        root.propagate = propagate
