"""Celery's task time limits come from the settings."""

from __future__ import annotations

from worker.celery_app import celery, configure


def test_configure_sets_soft_and_hard_task_time_limits(settings, runtime):
    configure(settings.with_(task_soft_time_limit=120, task_time_limit=150), runtime)
    assert celery.conf.task_soft_time_limit == 120
    assert celery.conf.task_time_limit == 150
    configure(settings, runtime)
    assert (celery.conf.task_soft_time_limit, celery.conf.task_time_limit) == (3600, 3660)
