"""librdkafka's queue IO event for a ``confluent_kafka.Producer``: a pipe that becomes readable
when a delivery report (or an error) is waiting, so the event loop itself can serve it.

Why: librdkafka reports deliveries only from ``poll()``. Blocking a thread in ``poll()`` costs
a thread hop and a GIL hand-over per ack (strace: seven futex calls per order), and on a busy
two-core machine every hop is a chance to wait for a CPU. librdkafka's documented answer for
event loops is ``rd_kafka_queue_io_event_enable()``: it writes to a file descriptor whenever the
main queue goes from empty to non-empty. confluent-kafka does not expose it (an open pull request,
confluent-kafka-python#1448), so this reaches it through ctypes.

The one assumption: confluent-kafka's ``Handle`` struct starts with the ``rd_kafka_t *`` right
after the object header (unchanged since 2016). It is checked before use: the handle must name
itself ``<client.id>#producer-<n>`` and be a producer; anything else, or a platform where the
library can't be found, returns None and the caller keeps its poll thread.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache

from confluent_kafka import Producer

_RD_KAFKA_PRODUCER = 0  # rd_kafka_type_t


@cache
def _librdkafka() -> ctypes.CDLL | None:
    """The librdkafka that confluent_kafka loaded (its own bundled copy, found in our mappings)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "librdkafka" in line and "/" in line}
    except OSError:
        return None
    if len(paths) != 1:
        return None
    lib = ctypes.CDLL(paths.pop())  # already loaded: dlopen hands back the same copy
    lib.rd_kafka_name.restype = ctypes.c_char_p
    lib.rd_kafka_name.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_type.restype = ctypes.c_int
    lib.rd_kafka_type.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_queue_get_main.restype = ctypes.c_void_p
    lib.rd_kafka_queue_get_main.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_queue_io_event_enable.restype = None
    lib.rd_kafka_queue_io_event_enable.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_queue_destroy.restype = None
    lib.rd_kafka_queue_destroy.argtypes = [ctypes.c_void_p]
    return lib


def _handle(producer: Producer, client_id: str) -> int | None:
    if sys.implementation.name != "cpython" or type(producer) is not Producer:
        return None
    lib = _librdkafka()
    if lib is None:
        return None
    rk = ctypes.c_void_p.from_address(id(producer) + object.__basicsize__).value
    if not rk:
        return None
    name = lib.rd_kafka_name(rk) or b""
    if not name.decode(errors="replace").startswith(f"{client_id}#producer-"):
        return None
    if lib.rd_kafka_type(rk) != _RD_KAFKA_PRODUCER:
        return None
    return rk


def enable_io_event(producer: Producer, client_id: str, fd: int) -> bool:
    """Have ``producer`` write a byte to ``fd`` (non-blocking) whenever its main queue (delivery
    reports, errors) goes from empty to non-empty; whoever reads ``fd`` must then ``poll(0)``.
    Events queued before this call write nothing: ``poll(0)`` once right after it.
    Returns False, changing nothing, when the handle can't be reached safely."""
    rk = _handle(producer, client_id)
    lib = _librdkafka()
    if rk is None or lib is None:
        return False
    queue = lib.rd_kafka_queue_get_main(rk)
    if not queue:
        return False
    # The event is set on the queue itself; our reference to it is not needed to keep it.
    lib.rd_kafka_queue_io_event_enable(queue, fd, b"!", 1)
    lib.rd_kafka_queue_destroy(queue)
    return True


def disable_io_event(producer: Producer, client_id: str) -> None:
    """Stop writing to the descriptor (before it is closed while the producer lives on)."""
    rk = _handle(producer, client_id)
    lib = _librdkafka()
    if rk is None or lib is None:
        return
    queue = lib.rd_kafka_queue_get_main(rk)
    if queue:
        lib.rd_kafka_queue_io_event_enable(queue, -1, None, 0)
        lib.rd_kafka_queue_destroy(queue)


def wakeup_pipe() -> tuple[int, int]:
    """(read end, write end), both non-blocking: librdkafka's write must never block its thread,
    and a full pipe already says "something is waiting"."""
    return os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
