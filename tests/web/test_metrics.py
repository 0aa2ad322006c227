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
