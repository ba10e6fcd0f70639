"""The relay's partitioner: Kafka's default placement of every key, computed once per key."""

from __future__ import annotations

import secrets

from aiokafka.partitioner import DefaultPartitioner

from servicekit.kafka_connections import RememberingPartitioner


def test_the_relay_s_partitioner_puts_every_key_where_kafka_s_default_one_does() -> None:
    remembering, default = RememberingPartitioner(limit=50), DefaultPartitioner()
    partitions = list(range(12))
    keys = [f"key-{n}".encode() for n in range(200)] + [secrets.token_bytes(16) for _ in range(50)]
    for key in keys * 2:  # the second time from memory (and past the limit: forgotten, again)
        assert remembering(key, partitions, partitions) == default(key, partitions, partitions)
    assert remembering(b"k", [3, 7], [3, 7]) == default(b"k", [3, 7], [3, 7])
