"""GET /oauth/callback: where Salesforce sends the browser after the consent screen.

Public (no login): whoever consents to an API-started link lands here. The state decides
everything; a link started from a page also needs the browser session that started it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from shared.linking import LinkFailed, complete_link

from .db import runtime, settings

bp = Blueprint("oauth", __name__)

# Key in the (signed) Flask session holding this browser's link binding secret.
BINDING_KEY = "oauth_link_binding"


@bp.get("/oauth/callback")
def callback() -> Any:
    try:
        result = complete_link(
            runtime(),
            request.args.to_dict(),
            redirect_uri=settings().oauth_callback_url,
            session_binding=session.get(BINDING_KEY),
        )
    except LinkFailed as exc:
        page = render_template("oauth/failed.html", error=exc)
        return page, 400, {"Cache-Control": "no-store"}
    if result.session_bound:
        verb = "Linked" if result.created else "Relinked"
        flash(f"{verb} {result.account_name} as {result.username}.", "success")
        return redirect(url_for("accounts.detail", account_id=result.account_id))
    return render_template("oauth/linked.html", result=result), 200, {"Cache-Control": "no-store"}
