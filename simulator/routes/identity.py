"""Who a token belongs to: ``/services/oauth2/userinfo`` and the identity URL."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from simulator.routes.plumbing import json_response, presented_token, sim_state
from simulator.values import fmt_dt

identity_bp = Blueprint("identity", __name__)


def _bearer_user():
    state = sim_state()
    access = state.access_token_state(presented_token())
    if access is None:
        return None, None
    return access, state.users[access.user_id]


def _bad_token() -> Response:
    return Response("Bad_OAuth_Token", status=403, mimetype="text/plain")


def _identity_urls(user_id: str) -> dict[str, str]:
    state = sim_state()
    inst = state.instance_url or ""
    org = state.org_id
    return {
        "enterprise": f"{inst}/services/Soap/c/{{version}}/{org[:15]}",
        "metadata": f"{inst}/services/Soap/m/{{version}}/{org[:15]}",
        "partner": f"{inst}/services/Soap/u/{{version}}/{org[:15]}",
        "rest": f"{inst}/services/data/v{{version}}/",
        "sobjects": f"{inst}/services/data/v{{version}}/sobjects/",
        "search": f"{inst}/services/data/v{{version}}/search/",
        "query": f"{inst}/services/data/v{{version}}/query/",
        "recent": f"{inst}/services/data/v{{version}}/recent/",
        "profile": f"{inst}/{user_id}",
        "users": f"{inst}/services/data/v{{version}}/chatter/users",
        "custom_domain": inst,
    }


def _profile_tail(user_id: str) -> dict[str, Any]:
    """The fields userinfo and the identity URL both end with."""
    return {
        "urls": _identity_urls(user_id),
        "active": True,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_GB",
        "utcOffset": 0,
    }


@identity_bp.route("/services/oauth2/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    state = sim_state()
    access, user = _bearer_user()
    if user is None:
        return _bad_token()
    return json_response(
        {
            "sub": state.identity_url(user.user_id),
            "user_id": user.user_id,
            "organization_id": state.org_id,
            "preferred_username": user.username,
            "nickname": user.username.split("@")[0],
            "name": user.display_name,
            "email": user.email,
            "email_verified": True,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "zoneinfo": "Europe/London",
            **_profile_tail(user.user_id),
        }
    )


@identity_bp.get("/id/<org_id>/<user_id>")
def identity(org_id: str, user_id: str) -> Response:
    state = sim_state()
    access, user = _bearer_user()
    if user is None:
        return _bad_token()
    if org_id != state.org_id or user_id != user.user_id:
        return Response("Bad_Id", status=403, mimetype="text/plain")
    return json_response(
        {
            "id": state.identity_url(user.user_id),
            "asserted_user": True,
            "user_id": user.user_id,
            "organization_id": state.org_id,
            "username": user.username,
            "nick_name": user.username.split("@")[0],
            "display_name": user.display_name,
            "email": user.email,
            "email_verified": True,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "timezone": "Europe/London",
            "status": {"created_date": None, "body": None},
            **_profile_tail(user.user_id),
            "last_modified_date": fmt_dt(state.now()),
            "is_app_installed": True,
        }
    )
