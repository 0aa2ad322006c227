"""A local two-host stand-in for Salesforce OAuth and REST, for tests and demo mode.

Entry points: ``simulator.server.SimulatorServer``, ``simulator.server.serve``,
``simulator.server.seed_demo`` and ``simulator.control.SimulatorControl``.

Layout: ``state`` (``SimState``, put together from ``oauth_store``, ``ops``, ``records`` and
``queries``), ``soql/`` (lexer, parser, evaluator), ``schema`` and ``ids`` (objects, fields, record
ids), ``routes/`` (one blueprint module per HTTP surface), ``app`` (the two hosts), ``server``
(threaded werkzeug servers) and ``control`` (a client for the ``/_sim`` control API).
"""
