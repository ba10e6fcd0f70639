"""The fault suite (`make test-faults`, and part of `make test`): chatshare's parts as processes
that a test SIGKILLs, duplicates fed to its consumers, deletes racing reads. One split stack for
the whole folder: every test ends by checking the stack as a whole, so they can share it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devstack import postgres
from devstack.kafka import KafkaNode
from tests.faults.fault_harness import FaultStack, fault_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="package")
async def faults(
    kafka_node: KafkaNode, postgres_node: postgres.PostgresNode
) -> AsyncIterator[FaultStack]:
    async with fault_stack(kafka_node, postgres_node) as stack:
        yield stack
