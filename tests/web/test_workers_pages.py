"""Workers and queues: a real worker process answers inspect; the queue is the real Redis."""

from __future__ import annotations

from datetime import timedelta

from shared.models import Run, utcnow
from tests.conftest import poll


def test_a_running_worker_is_listed_with_its_pool(logged_in, worker):
    def listed():
        page = logged_in.client.get("/workers/").get_data(as_text=True)
        return page if 'id="workers"' in page else None

    page = poll(listed, timeout=60, message="the worker to answer inspect")
    assert f"<code>{worker.hostname_prefix}" in page
    assert "<td>2</td>" in page  # the pool size (the fixture's concurrency)


def test_queue_depth_oldest_queued_and_the_chart(logged_in, runtime, no_worker):
    from worker.tasks.runs import enqueue

    now = utcnow()
    with runtime.Session.begin() as session:
        queued = Run(behavior_name="x", status="queued", queued_at=now - timedelta(minutes=5))
        session.add(queued)
        for minutes, status in ((1, "succeeded"), (1, "succeeded"), (2, "failed"), (90, "failed")):
            at = now - timedelta(minutes=minutes)
            session.add(Run(behavior_name="x", status=status, finished_at=at, created_at=at))
    with runtime.Session() as session:
        run_id = session.query(Run.id).filter_by(status="queued").scalar()
    enqueue(run_id)
    page = logged_in.client.get("/workers/").get_data(as_text=True)
    assert 'id="no-workers"' in page
    assert '<b id="queue-depth">1</b>' in page
    assert '<b id="queued-runs">1</b>' in page and "oldest queued 5m" in page
    assert page.count('class="bar succeeded"') == 1  # both in one minute's bar
    assert page.count('class="bar failed"') == 1  # the one 90 minutes ago is not in the hour
    assert "2 succeeded" in page
