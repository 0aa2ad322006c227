"""Named Celery tasks, one module per concern; importing this registers them all."""

import importlib

from . import health  # noqa: F401

for _module in ("accounts", "runs", "schedules", "syncs"):
    try:
        importlib.import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_module}":
            raise
