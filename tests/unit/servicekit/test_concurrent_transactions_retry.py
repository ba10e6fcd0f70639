"""A relay's next transaction, refused while the last one's markers are being written
(CONCURRENT_TRANSACTIONS), is tried again after a few milliseconds rather than aiokafka's 20."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka.errors import ConcurrentTransactions
from aiokafka.producer.sender import AddPartitionsToTxnHandler

from servicekit.kafka_connections import (
    CONCURRENT_TRANSACTIONS_RETRY_SECONDS,
    retry_concurrent_transactions_sooner,
)


def wait_after_concurrent_transactions() -> float:
    """What aiokafka's handler of AddPartitionsToTxn answers waits before trying again, for a
    transaction's first partitions refused with CONCURRENT_TRANSACTIONS."""
    sender = SimpleNamespace(_retry_backoff=0.1, _txn_manager=SimpleNamespace(txn_partitions=set()))
    handler = AddPartitionsToTxnHandler(sender, [])
    response = SimpleNamespace(errors=[("share.events", [(3, ConcurrentTransactions.errno)])])
    return float(handler.handle_response(response))


def test_the_relay_tries_a_refused_transaction_again_after_a_few_milliseconds() -> None:
    retry_concurrent_transactions_sooner()
    assert wait_after_concurrent_transactions() == CONCURRENT_TRANSACTIONS_RETRY_SECONDS
    assert CONCURRENT_TRANSACTIONS_RETRY_SECONDS < 0.02  # aiokafka's own wait
