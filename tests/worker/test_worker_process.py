import uuid

import redis

from tests.conftest import poll
from worker.celery_app import celery, use_broker


def test_a_real_worker_process_consumes_from_redis(settings, worker):
    key = uuid.uuid4().hex
    use_broker(settings.redis_url)
    celery.send_task("worker.health.ping", args=[key])
    client = redis.Redis.from_url(settings.redis_url)
    poll(lambda: client.get(f"forcebot:ping:{key}"), message="the worker's pong")
    assert worker.alive


def test_celery_is_configured_for_no_lost_work():
    conf = celery.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result is True
    assert conf.broker_transport_options["visibility_timeout"] >= 600
