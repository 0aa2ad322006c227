"""A local two-host stand-in for Salesforce OAuth and REST, for tests and demo mode.

Entry points: ``simulator.server.SimulatorServer``, ``simulator.server.serve``,
``simulator.server.seed_demo`` and ``simulator.control.SimulatorControl``.
"""
