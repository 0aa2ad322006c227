def test_metrics_needs_auth_and_reports_runs(client, logged_in, runtime, api_token):
    from shared.models import Run

    with runtime.Session.begin() as session:
        session.add_all([Run(behavior_name="x", status="failed"), Run(behavior_name="x")])
    body = client.get("/metrics").get_data(as_text=True)
    assert 'forcebot_runs{status="failed"} 1.0' in body
    assert 'forcebot_runs{status="queued"} 1.0' in body
    assert "forcebot_oldest_queued_run_age_seconds" in body


def test_metrics_accepts_a_bearer_token(app, api_token):
    anonymous = app.test_client().get("/metrics")
    assert anonymous.status_code == 401  # not a redirect to the login page a scraper can't use
    assert "Bearer" in anonymous.headers["WWW-Authenticate"]
    scraped = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {api_token}"})
    assert scraped.status_code == 200
    assert "forcebot_runs" in scraped.get_data(as_text=True)
    wrong = app.test_client().get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401


def test_metrics_histograms_calls_by_error_code_queue_depth_and_queued_age(app, api_token):
    from datetime import timedelta

    from shared.models import Run, utcnow
    from shared.models.runs import Attempt, HttpExchange, RunStep

    runtime = app.extensions["forcebot.runtime"]
    now = utcnow()
    with runtime.Session.begin() as session:
        run = Run(behavior_name="x", status="succeeded")
        waiting = Run(
            behavior_name="x",
            status="queued",
            created_at=now - timedelta(hours=5),
            queued_at=now - timedelta(seconds=600),
        )
        session.add_all([run, waiting])
        session.flush()
        attempt = Attempt(
            run_id=run.id, number=1, started_at=now - timedelta(seconds=3), finished_at=now
        )
        session.add(attempt)
        session.flush()
        step = RunStep(
            run_id=run.id,
            attempt_id=attempt.id,
            key="s",
            action="http.request",
            status="succeeded",
            started_at=now - timedelta(milliseconds=200),
            finished_at=now,
        )
        session.add(step)
        session.flush()
        session.add_all(
            [
                HttpExchange(run_id=run.id, step_id=step.id, method="GET", url="/a", status=200),
                HttpExchange(
                    run_id=run.id,
                    step_id=step.id,
                    method="GET",
                    url="/a",
                    status=400,
                    response_body='[{"message": "bad", "errorCode": "MALFORMED_QUERY"}]',
                ),
            ]
        )
    body = (
        app.test_client()
        .get("/metrics", headers={"Authorization": f"Bearer {api_token}"})
        .get_data(as_text=True)
    )
    assert 'forcebot_step_duration_seconds_bucket{le="0.25"} 1.0' in body
    assert 'forcebot_step_duration_seconds_bucket{le="0.1"} 0.0' in body
    assert 'forcebot_attempt_duration_seconds_bucket{le="5.0"} 1.0' in body
    assert 'forcebot_attempt_duration_seconds_bucket{le="2.5"} 0.0' in body
    assert 'forcebot_salesforce_calls{error_code="",status="200"} 1.0' in body
    assert 'forcebot_salesforce_calls{error_code="MALFORMED_QUERY",status="400"} 1.0' in body
    assert 'forcebot_queue_depth{source="database"} 1.0' in body
    age = next(
        float(line.split()[-1])
        for line in body.splitlines()
        if line.startswith("forcebot_oldest_queued_run_age_seconds ")
    )
    assert 590 < age < 3600  # from queued_at, not the five-hour-old created_at
