"""Group commit on the real PostgreSQL event store: the same tests as in memory, where one save
is one transaction under the events table's lock."""

from __future__ import annotations

import pytest

from tests.unit.share_service.test_group_commit import (
    test_commands_arriving_together_are_saved_in_one_save,
    test_commands_on_one_chat_in_one_batch_end_with_one_link,
    test_concurrent_requests_are_batched_and_each_gets_its_answer,
    test_drain_answers_what_waits_for_its_window,
    test_each_command_of_a_batch_keeps_its_own_error,
    test_under_load_a_full_batch_goes_at_once_and_the_next_follows_it,
    test_when_the_combined_save_fails_each_command_is_saved_alone,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_commands_arriving_together_are_saved_in_one_save",
    "test_commands_on_one_chat_in_one_batch_end_with_one_link",
    "test_concurrent_requests_are_batched_and_each_gets_its_answer",
    "test_drain_answers_what_waits_for_its_window",
    "test_each_command_of_a_batch_keeps_its_own_error",
    "test_under_load_a_full_batch_goes_at_once_and_the_next_follows_it",
    "test_when_the_combined_save_fails_each_command_is_saved_alone",
]
