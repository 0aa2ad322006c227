"""A fix for kombu's Redis transport: a worker must survive its broker restarting.

kombu 5.7.0 (the newest release) can kill a Celery worker's main process when Redis goes
away with messages in flight. On the connection error Celery's consumer runs
`connection.collect()` and then `connection.close()`:

1. `collect()` closes the channels. The default channel is in the middle of a BRPOP, so its
   `close()` first reads that reply, gets `ConnectionError`, and stops there. The channel is
   still not marked closed. kombu swallows the error, and `collect()` then detaches the
   transport from its connection (`transport.client = None`).
2. `close()` closes that channel again. This time it gets as far as restoring its unacked
   messages. That needs a new Redis pool, and building one reads `transport.client.hostname`
   from the detached transport: `AttributeError: 'NoneType' object has no attribute
   'hostname'`. That is not one of the connection errors Celery ignores there. The worker
   logs `Unrecoverable error` and exits.

A supervisor (`forcebot up`, compose's `restart:`) starts the worker again. Without one,
queued runs wait until someone notices (the chaos drill R2′ saw this on both databases).

`install()` makes `_connparams` raise Redis's own `ConnectionError` when the transport has
been detached. Celery already expects that error there: it ignores it and reconnects. The
unacked messages are not restored by this channel. They stay in Redis's unacked hash, and
the next consumer re-delivers them after the visibility timeout. If Redis came back empty
they are gone, and the run reconciler re-sends queued runs from the database. A patch of a
library's method is the last resort; it is here because no kombu release fixes this. The
patch is one guard, and `tests/worker/test_broker.py` reproduces the crash without it.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis import exceptions as redis_exceptions

_MARK = "_forcebot_detached_guard"


def install() -> None:
    """Guard `kombu.transport.redis.Channel._connparams` (idempotent)."""
    original = kombu_redis.Channel._connparams
    if getattr(original, _MARK, False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis_exceptions.ConnectionError(
                "the broker connection was closed while this channel was still open"
            )
        return original(self, asynchronous=asynchronous)

    setattr(_connparams, _MARK, True)
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]
