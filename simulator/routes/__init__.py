"""The simulator's HTTP surfaces, one blueprint module per surface.

``plumbing`` (per-app hooks: faults, request log, Sforce-Limit-Info, error pages; JSON and
session helpers), ``oauth`` (authorize, token, revoke, introspect), ``identity`` (userinfo and the
identity URL), ``sobjects`` (versions, describe, record CRUD, external ids, replication windows),
``query`` (query, queryAll, paging, limits), ``composite`` (composite/sobjects, composite,
batch, tree), ``search`` (SOSL) and ``control`` (the ``/_sim`` control API). ``simulator.app``
puts them together into the two hosts; a new surface is a new module with its own blueprint
(``bp.before_request(plumbing.authenticate_rest)``) registered there.
"""
