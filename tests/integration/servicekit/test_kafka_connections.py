"""On uvloop (the services' loop), a request written to a Kafka connection whose socket has just
closed fails as a broken connection — which aiokafka's callers retry — and not with the
RuntimeError that ended a consumer's group coordination for good (aio-libs/aiokafka#1038)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from aiokafka.conn import AIOKafkaConnection, create_conn
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from servicekit.kafka_connections import survive_closed_transports

pytestmark = pytest.mark.integration


async def write_after_the_socket_closed(bootstrap: str) -> BaseException | None:
    """A request sent just after the socket closed, before aiokafka's reader noticed."""
    host, port = bootstrap.rsplit(":", 1)
    connection: AIOKafkaConnection = await create_conn(host, int(port))
    connection._writer.transport.abort()  # as a broker that went away
    await asyncio.sleep(0)  # the loop has closed the transport; aiokafka has not looked yet
    try:
        await connection.send(MetadataRequest([]))
    except BaseException as error:  # what the caller meets is the point of this test
        return error
    finally:
        connection.close()
    return None


def test_a_write_to_a_closed_socket_is_a_broken_connection_on_uvloop(
    kafka_bootstrap: str,
) -> None:
    survive_closed_transports()
    survive_closed_transports()  # harmless twice: every service's runtime calls it
    error = uvloop.run(write_after_the_socket_closed(kafka_bootstrap))
    assert isinstance(error, KafkaConnectionError), repr(error)
    assert "broken" in str(error)
