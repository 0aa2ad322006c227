"""Serve the Flask app with gunicorn from inside the `forcebot web` command."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from shared.config import Settings


class _App(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from web import create_app

        return create_app(self.settings)


def serve(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    _App(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 60,
            "graceful_timeout": 10,
            "accesslog": "-",
            # Path without the query string: /oauth/callback?code=... must not reach the logs.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "forcebot-web",
            # The app connects lazily, so each worker opens its own database pool.
            "preload_app": False,
        },
    ).run()
