"""aiokafka's connections made safe under uvloop, which uvicorn runs the services on.

When the broker goes away, uvloop closes the socket's transport before aiokafka's reader task
has noticed; a request written in that moment raises uvloop's RuntimeError ("the handler is
closed"), where the standard loop raises nothing and aiokafka expects an OSError
(aio-libs/aiokafka#1038, still open in 0.14). Uncaught, it ends a consumer's group-coordinator
routine for good: the consumer stays in the process, still "assigned" as far as anyone can
tell, and never consumes again. Found by the Kafka SIGKILL restart test (the chat mirror
stopped after the broker came back). The error is turned into the KafkaConnectionError that
aiokafka raises for any broken connection, which every caller already retries.
"""

from __future__ import annotations

from typing import Any

from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer import sender

_PATCHED = "_chatshare_survives_closed_transports"


def survive_closed_transports() -> None:
    """Patch `AIOKafkaConnection.send` once per process (idempotent); call before any Kafka
    client starts."""
    if getattr(AIOKafkaConnection.send, _PATCHED, False):
        return
    original = AIOKafkaConnection.send

    def send(self: AIOKafkaConnection, request: Any, expect_response: bool = True) -> Any:
        try:
            return original(self, request, expect_response)
        except RuntimeError as error:
            writer = self._writer
            if writer is None or not writer.transport.is_closing():
                raise  # not the closed-transport case: nothing of ours to translate
            self.close(reason=CloseReason.CONNECTION_BROKEN, exc=error)
            raise KafkaConnectionError(
                f"Connection at {self._host}:{self._port} broken: {error}"
            ) from error

    setattr(send, _PATCHED, True)
    AIOKafkaConnection.send = send


# How long a transactional producer waits before adding its first partitions again when the
# coordinator answers CONCURRENT_TRANSACTIONS: it is still writing the markers of the transaction
# just committed (KAFKA-5477). aiokafka waits 20 ms (`sender.BACKOFF_OVERRIDE`, no setting), as
# the Java client does; here the markers take 1.6 ms at the median (5 ms p90, the broker's
# request log at 100 creates/s), and one back-to-back transaction in eight hit the 20 ms wait:
# a relay stalled for it, with every save behind it.
CONCURRENT_TRANSACTIONS_RETRY_SECONDS = 0.003


def retry_concurrent_transactions_sooner() -> None:
    """Shorten aiokafka's wait after CONCURRENT_TRANSACTIONS for every producer of the process
    (idempotent); a retry too early is one more small request to the coordinator."""
    sender.BACKOFF_OVERRIDE = CONCURRENT_TRANSACTIONS_RETRY_SECONDS


class RememberingPartitioner:
    """Kafka's default partitioner (murmur2 of the key, as the Java client computes it), with
    each key's hash remembered: aiokafka computes murmur2 in pure Python, 7 % of the relay's
    CPU, and a relay publishes the same keys again and again (a link's every event, the one
    key of the admin's settings). Same partitions as `DefaultPartitioner` for every key; a
    record without a key goes where `DefaultPartitioner` sends it."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self.limit:
                self._hashes.clear()  # cheaper than an LRU, and rare: the keys a relay repeats
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]
