"""Behavior pages: list with an empty state, create/edit with errors listed, import, delete."""

from __future__ import annotations

from typing import Any

from markupsafe import escape
from sqlalchemy import func, select

from shared.models import Account, Behavior, BehaviorVersion, Run
from web.pages.behaviors import PACKAGE_FILE

SOURCE = """\
name: page-made
account: acme-prod
steps:
  - id: hello
    action: set
    vars: {x: 1}
"""


def _versions(runtime: Any) -> int:
    with runtime.Session() as session:
        return session.scalar(select(func.count()).select_from(BehaviorVersion)) or 0


def test_empty_state_points_to_the_package(logged_in: Any) -> None:
    page = logged_in.client.get("/behaviors/").get_data(as_text=True)
    assert "No behaviors yet" in page
    assert "/behaviors/import" in page and "Salesforce Bot" in page


def test_pages_need_login(client: Any) -> None:
    assert client.get("/behaviors/").status_code in (302, 401)


def test_create_then_edit_makes_versions(logged_in: Any, runtime: Any, named_account: Any) -> None:
    named_account()
    client = logged_in.client
    token = logged_in.csrf_token("/behaviors/new")
    response = client.post("/behaviors/new", data={"source": SOURCE, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/behaviors/page-made")

    page = client.get("/behaviors/page-made").get_data(as_text=True)
    assert "action: set" in page and "v1" in page

    edited = SOURCE.replace("x: 1", "x: 2")
    response = client.post("/behaviors/page-made", data={"source": edited, "csrf_token": token})
    assert response.status_code == 302
    page = client.get("/behaviors/page-made").get_data(as_text=True)
    assert "x: 2" in page and "v2" in page
    old = client.get("/behaviors/page-made?version=1").get_data(as_text=True)
    assert "x: 1" in old
    assert _versions(runtime) == 2
    listing = client.get("/behaviors/").get_data(as_text=True)
    assert "page-made" in listing


def test_errors_are_listed_and_nothing_saved(logged_in: Any, runtime: Any) -> None:
    client = logged_in.client
    token = logged_in.csrf_token("/behaviors/new")
    bad = (
        SOURCE.replace("vars: {x: 1}", "vars: {x: '{{ oops }'}") + "  - id: hello\n    action: x\n"
    )
    response = client.post("/behaviors/new", data={"source": bad, "csrf_token": token})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "problems found; nothing was saved" in page
    assert "account: unknown account &#34;acme-prod&#34;" in page
    assert "steps[0].vars.x: template syntax error on line 1" in page
    assert "steps[1].id: duplicate &#34;hello&#34;" in page
    assert "{{ oops }" in page  # the text is kept for fixing
    assert _versions(runtime) == 0


def test_import_bundled_package_and_delete(
    logged_in: Any, runtime: Any, named_account: Any
) -> None:
    named_account()
    client = logged_in.client
    token = logged_in.csrf_token("/behaviors/import")
    form = {"bundled": "salesforce-bot", "account": "acme-prod", "csrf_token": token}
    preview = client.post("/behaviors/import", data=form)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    assert "Nothing has been saved yet" in preview.get_data(as_text=True)
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Behavior)) == 0
    response = client.post("/behaviors/import", data={**form, "confirm": "create"})
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "5 created, 0 updated, 0 unchanged" in page
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Behavior)) == 5

    response = client.post("/behaviors/create-lead/delete", data={"csrf_token": token})
    assert response.status_code == 302
    with runtime.Session() as session:
        assert session.scalar(select(Behavior).where(Behavior.name == "create-lead")) is None


def test_import_shows_changes_and_updates_only_when_asked(
    logged_in: Any, runtime: Any, named_account: Any
) -> None:
    from shared.behaviors.store import get_version

    named_account()
    client = logged_in.client
    token = logged_in.csrf_token("/behaviors/import")
    form = {"bundled": "salesforce-bot", "account": "acme-prod", "csrf_token": token}
    client.post("/behaviors/import", data={**form, "confirm": "create"})
    with runtime.Session.begin() as session:
        service_id = session.scalar(select(Account.service_id))
        session.add(Account(service_id=service_id, name="other"))
    changed = {"source": PACKAGE_FILE.read_text(), "account": "other", "csrf_token": token}
    preview = client.post("/behaviors/import", data=changed).get_data(as_text=True)
    assert "differs from the stored version 1" in preview
    assert "-account: acme-prod" in preview and "+account: other" in preview
    assert "Create and update" in preview

    kept = client.post("/behaviors/import", data={**changed, "confirm": "create"})
    assert "kept as they were" in kept.get_data(as_text=True)
    with runtime.Session() as session:
        assert all(
            get_version(session, name).definition["account"] == "acme-prod"
            for name in ("find-contact-by-email", "create-lead")
        )
    client.post("/behaviors/import", data={**changed, "confirm": "update"})
    with runtime.Session() as session:
        first = get_version(session, "find-contact-by-email")
        assert (first.version, first.definition["account"]) == (2, "other")


def test_import_pasted_invalid_package(logged_in: Any, runtime: Any) -> None:
    client = logged_in.client
    token = logged_in.csrf_token("/behaviors/import")
    response = client.post(
        "/behaviors/import",
        data={"source": "behaviors:\n  - name: x\n    steps: []\n", "csrf_token": token},
    )
    assert response.status_code == 422
    assert "behaviors[0].steps: at least one step is required" in response.get_data(as_text=True)
    assert _versions(runtime) == 0


def test_forms_require_csrf(logged_in: Any) -> None:
    response = logged_in.client.post("/behaviors/new", data={"source": SOURCE})
    assert response.status_code == 400


def test_run_form_queues_a_run(logged_in: Any, runtime: Any, named_account: Any) -> None:
    named_account()
    client = logged_in.client
    token = logged_in.csrf_token("/behaviors/new")
    client.post("/behaviors/new", data={"source": SOURCE, "csrf_token": token})
    bad = client.post("/behaviors/page-made/run", data={"payload": "{nope", "csrf_token": token})
    assert bad.status_code == 422
    assert "not valid JSON" in bad.get_data(as_text=True) and "{nope" in bad.get_data(as_text=True)
    response = client.post("/behaviors/page-made/run", data={"payload": "{}", "csrf_token": token})
    assert response.status_code == 302
    with runtime.Session() as session:
        runs = session.scalars(select(Run)).all()
    assert [(r.behavior_name, r.status, r.behavior_version) for r in runs] == [
        ("page-made", "queued", 1)
    ]
    assert f"/runs/{runs[0].id}" in response.headers["Location"] or response.headers[
        "Location"
    ].endswith("/behaviors/page-made")


def test_run_form_uses_the_configured_max_attempts(
    settings: Any, runtime: Any, named_account: Any
) -> None:
    from shared.behaviors.store import save_behavior
    from shared.models import Run
    from tests.conftest import AuthActions
    from web import create_app

    app = create_app(settings.with_(run_max_attempts=2), runtime)
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    auth = AuthActions(app.test_client(), runtime)
    auth.create_admin()
    assert auth.login().status_code == 302
    named_account()
    with runtime.Session.begin() as session:
        save_behavior(session, SOURCE)
    response = auth.client.post("/behaviors/page-made/run", data={"payload": "{}"})
    assert response.status_code == 302
    with runtime.Session() as session:
        assert session.scalars(select(Run.max_attempts)).one() == 2


def test_a_rejected_run_payload_comes_back_for_editing(client, logged_in, runtime):
    from shared.behaviors.store import save_behavior

    with runtime.Session.begin() as session:
        save_behavior(
            session,
            "name: needs-email\ninputs:\n  email: {type: string, required: true}\n"
            "steps:\n  - id: x\n    action: set\n    vars: {a: 1}\n",
        )
    token = logged_in.csrf_token("/behaviors/needs-email")
    response = client.post(
        "/behaviors/needs-email/run",
        data={"payload": '{"emial": "typo@example.com"}', "csrf_token": token},
    )
    page = response.get_data(as_text=True)
    assert "The payload was rejected" in page
    assert "typo@example.com" in page
    assert response.status_code == 422


def test_a_too_large_run_payload_states_the_limit_and_keeps_the_text(client, logged_in, runtime):
    from shared.behaviors.store import MAX_PAYLOAD_BYTES, save_behavior

    with runtime.Session.begin() as session:
        save_behavior(session, "name: big\nsteps:\n  - id: x\n    action: set\n    vars: {a: 1}\n")
    big = '{"notes": "' + "x" * (MAX_PAYLOAD_BYTES + 10) + '"}'
    token = logged_in.csrf_token("/behaviors/big")
    response = client.post("/behaviors/big/run", data={"payload": big, "csrf_token": token})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f"the limit is {MAX_PAYLOAD_BYTES}" in page
    assert str(escape(big)) in page  # all of it, not only what fits in a cookie
    assert f'data-max-bytes="{MAX_PAYLOAD_BYTES}"' in page
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0


def test_problem_lines_follow_the_path_into_the_yaml() -> None:
    from web.pages.behaviors import problem_lines

    source = "name: x\nsteps:\n  - id: a\n    action: set\n  - id: b\n    action: nope\n"
    marks = problem_lines(
        source,
        [
            'steps[1].action: unknown action "nope"',
            "steps[0].vars: required",  # missing key: the step's own line
            "steps[7].id: no such step",  # out of range: the list's key
            "source: invalid YAML on line 4, column 3",
            "no path here",
        ],
    )
    assert [m["line"] for m in marks] == [6, 3, 2, 4]
