"""Every consumer group of INTERFACE.md §5 parks what it gives up on in its own `dlq.<group>`;
`chatshare dlq redrive` must be able to hand each of those letters back."""

from __future__ import annotations

from chatshare_cli.group_handlers import HANDLERS

from contracts.topics import CONSUMER_GROUPS


def test_every_group_with_a_dead_letter_topic_has_a_redrive_handler() -> None:
    assert sorted(HANDLERS) == sorted(CONSUMER_GROUPS)
