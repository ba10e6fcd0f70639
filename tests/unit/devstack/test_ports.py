"""Ports handed to the services of one test stack never repeat."""

from __future__ import annotations

from devstack.ports import free_port, is_listening


def test_free_ports_are_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert not any(is_listening(port) for port in ports[:5])
