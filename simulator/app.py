"""Flask app factories for the simulator's two hosts (login and instance).

The blueprints live in ``simulator.routes``, one module per surface; this module only decides
which host serves which.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response

from simulator.routes.bulk import bulk_bp
from simulator.routes.composite import composite_bp
from simulator.routes.control import control_bp
from simulator.routes.identity import identity_bp
from simulator.routes.oauth import oauth_bp
from simulator.routes.plumbing import install_plumbing, json_response
from simulator.routes.query import query_bp
from simulator.routes.search import search_bp
from simulator.routes.sobjects import sobjects_bp
from simulator.state import SimState

# ---------------------------------------------------------------- login host: no REST API

login_only_bp = Blueprint("login_only", __name__)


@login_only_bp.route("/services/data", methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
@login_only_bp.route("/services/data/", methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
@login_only_bp.route(
    "/services/data/<path:rest>", methods=["GET", "POST", "PATCH", "DELETE", "PUT"]
)
def no_rest_here(rest: str = "") -> Response:
    return json_response(
        [
            {
                "errorCode": "NOT_FOUND",
                "message": "The REST API is not served on the login host; use instance_url",
            }
        ],
        404,
    )


def create_login_app(state: SimState) -> Flask:
    """The login host: OAuth endpoints, identity URL and the /_sim control API."""
    app = Flask("simulator.login")
    install_plumbing(app, state, "login")
    for blueprint in (oauth_bp, identity_bp, login_only_bp, control_bp):
        app.register_blueprint(blueprint)
    return app


def create_instance_app(state: SimState) -> Flask:
    """The instance host: REST API plus the OAuth endpoints (as a My Domain serves them)."""
    app = Flask("simulator.instance")
    install_plumbing(app, state, "instance")
    blueprints = (oauth_bp, identity_bp, sobjects_bp, query_bp, composite_bp, search_bp, bulk_bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app
