"""The Celery app: configured from Settings, Redis broker, no result backend.

Tasks are thin and named (`worker.runs.execute`); they take ids, re-read state and delegate
to plain code in `shared/`. Outcomes live in our tables, so there is no result backend.
`configure(settings)` must be called once per process before a task runs or is sent.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from shared.config import Settings
from shared.runtime import Runtime

from . import broker

broker.install()  # before any connection: a worker must outlive a Redis restart

log = logging.getLogger(__name__)

# Long waits are stored in the database and re-queued by the dispatcher, so no countdown we
# send ever comes near this; it only bounds how long an unacked message of a killed worker
# stays invisible before Redis hands it out again (the reconciler usually acts sooner).
VISIBILITY_TIMEOUT_SECONDS = 3600
MAX_COUNTDOWN_SECONDS = 60

celery = Celery("forcebot", set_as_current=True)
celery.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    result_backend=None,
    task_default_queue="forcebot",
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
    worker_hijack_root_logger=False,
    worker_send_task_events=True,
    # No "task-sent" event: it is a second Redis publish on every trigger, and nothing reads
    # it (the workers page asks workers with inspect; runs' state lives in our tables). Event
    # monitors such as Flower still see each task from "task-received" on.
    task_send_sent_event=False,
    timezone="UTC",
    enable_utc=True,
    imports=("worker.tasks",),
)

_runtime: Runtime | None = None


def configure(settings: Settings, runtime: Runtime | None = None) -> Celery:
    """Point the app at the settings' Redis and remember the process Runtime."""
    global _runtime
    _runtime = runtime or Runtime(settings)
    use_broker(settings.redis_url)
    celery.conf.task_soft_time_limit = settings.task_soft_time_limit
    celery.conf.task_time_limit = settings.task_time_limit
    celery.conf.broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
    from . import tasks  # noqa: F401 - task modules register their beat ticks on import
    from .beat import beat_schedule

    celery.conf.beat_schedule = beat_schedule()
    return celery


def use_broker(url: str | None) -> None:
    """Point the app at `url`, dropping pooled connections to a previous broker.

    Celery caches its connection and producer pools after the first send and keeps using them
    when `broker_url` changes. One process normally has one broker, but a process that builds
    apps for several settings (tests, `forcebot up`) must not send to the old one.
    """
    if celery.conf.broker_url == url:
        return
    # Drop our references only: the pools themselves live in kombu's registry, keyed by URL,
    # and may be used again when a later configuration names the same broker.
    celery._pool = None
    celery.amqp._producer_pool = None
    celery.conf.broker_url = url


def runtime() -> Runtime:
    """The process Runtime; configured lazily from the environment in a bare worker."""
    global _runtime
    if _runtime is None:
        configure(Settings.from_env())
    assert _runtime is not None
    return _runtime


@signals.after_setup_logger.connect
def _quiet_task_chatter(**_: Any) -> None:
    # Beat ticks every few seconds; "Task ... received/succeeded" for each would bury the
    # lines that matter (our own `run=42 status=failed code=...`). Failures still log.
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A prefork child must not reuse the parent's pooled database sockets.
    if _runtime is not None:
        _runtime.after_fork()
