"""Create chatshare's topics explicitly (never by auto-creation), from `contracts.topics`.

`python -m devstack.topics --bootstrap HOST:PORT` is also the one-shot topic creator of
docker-compose.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

from contracts.topics import TopicSpec, all_topics, max_message_bytes
from devstack.errors import StackError

DEFAULT_MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024


def topic_configs(max_snapshot_bytes: int) -> dict[str, str]:
    return {
        "retention.ms": "-1",  # events are kept forever: the topics alone rebuild any view
        "retention.bytes": "-1",
        "max.message.bytes": str(max_message_bytes(max_snapshot_bytes)),
        "cleanup.policy": "delete",
    }


async def ensure_topics(
    bootstrap_servers: str, max_snapshot_bytes: int, prefix: str = ""
) -> list[str]:
    """Create what is missing, grow partition counts that are too low; return what was created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15000)
    try:
        await admin.start()
    except Exception as error:  # aiokafka raises several types for "cannot connect"
        raise StackError(
            f"Cannot reach Kafka at {bootstrap_servers} to create topics: {error}"
        ) from error
    try:
        existing = set(await admin.list_topics())
        wanted = [replace(spec, name=prefix + spec.name) for spec in all_topics()]
        configs = topic_configs(max_snapshot_bytes)
        missing = [
            NewTopic(spec.name, spec.partitions, 1, topic_configs=configs)
            for spec in wanted
            if spec.name not in existing
        ]
        if missing:
            await admin.create_topics(missing, timeout_ms=30000)
            await _wait_for_leaders(admin, [topic.name for topic in missing])
        await _grow_partitions(admin, [spec for spec in wanted if spec.name in existing])
        return [topic.name for topic in missing]
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """New partitions take a moment to get a leader; clients would see errors until then."""
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(names)
        if all(p["leader"] >= 0 for topic in described for p in topic["partitions"]) and all(
            topic["partitions"] for topic in described
        ):
            return
        await asyncio.sleep(0.1)


async def _grow_partitions(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    described = await admin.describe_topics([spec.name for spec in specs])
    counts = {topic["topic"]: len(topic["partitions"]) for topic in described}
    grow = {
        spec.name: NewPartitions(total_count=spec.partitions)
        for spec in specs
        if counts.get(spec.name, spec.partitions) < spec.partitions
    }
    if grow:
        await admin.create_partitions(grow)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--max-snapshot-bytes", type=int, default=DEFAULT_MAX_SNAPSHOT_BYTES)
    parser.add_argument("--prefix", default="", help="CHATSHARE_TOPIC_PREFIX, if you use one")
    args = parser.parse_args()
    created = asyncio.run(ensure_topics(args.bootstrap, args.max_snapshot_bytes, args.prefix))
    print(f"topics created: {', '.join(created) if created else 'none (all present)'}")


if __name__ == "__main__":
    main()
