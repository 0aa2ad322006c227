"""Behaviors: definitions (YAML/JSON), sandboxed templates, actions, the engine, Python behaviors.

`store` saves and loads definitions, `engine.execute` runs one attempt, `registry` holds the
Python behaviors registered with `@behavior(...)`, `packages` imports several at once.
"""
