"""Group commit: commands arriving together are saved in one transaction, yet each keeps its own
answer and its own error, and commands on one chat in one batch still end with one live link."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from share_service.application.group_commit import GroupCommitter, chat_key, commit_together
from share_service.application.sharing import ShareLinkView, SharingApplication
from share_service.domain.errors import LinkNotFound, NotChatOwner
from tests.unit.share_service.chat_stories import ChatStory
from tests.unit.share_service.sharing_apps import OpenSharingApp


def chat_of(owner: str, chat_id: str) -> ChatStory:
    story = ChatStory(chat_id=chat_id, owner_id=owner)
    story.say(f"hello from {chat_id}")
    return story


def count_saves(app: SharingApplication, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of aggregates of each `save` call, as the test goes."""
    saves: list[int] = []
    save = app.save

    def counted_save(*aggregates: Any, **kwargs: Any) -> Any:
        saves.append(len(aggregates))
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(app, "save", counted_save)
    return saves


def share(app: SharingApplication, story: ChatStory, user_id: str) -> Callable[[], Any]:
    return lambda: app.decide_share(story.chat, user_id)


def test_commands_arriving_together_are_saved_in_one_save(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_sharing_app()
    chats = [chat_of("alice", f"chat-{n}") for n in range(5)]
    saves = count_saves(app, monkeypatch)

    outcomes = commit_together(app, [share(app, story, "alice") for story in chats])

    assert saves == [10]  # each new link and its chat's record, all in one save
    results = [outcome.unwrap() for outcome in outcomes]
    assert all(result.created for result in results)
    for story, result in zip(chats, results, strict=True):
        assert app.live_link_of_chat(story.chat_id) == result.link


def test_each_command_of_a_batch_keeps_its_own_error(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_sharing_app()
    alices, bobs = chat_of("alice", "a"), chat_of("bob", "b")
    saves = count_saves(app, monkeypatch)

    outcomes = commit_together(
        app,
        [
            share(app, alices, "alice"),
            share(app, bobs, "mallory"),
            lambda: app.decide_delete("no-such-link-00000000000000", "alice", is_admin=False),
            share(app, bobs, "bob"),
        ],
    )

    assert [type(outcome.error) for outcome in outcomes] == [
        type(None),
        NotChatOwner,
        LinkNotFound,
        type(None),
    ]
    assert outcomes[0].unwrap().created
    assert outcomes[3].unwrap().created
    assert saves == [4]
    with pytest.raises(NotChatOwner):
        outcomes[1].unwrap()


def test_commands_on_one_chat_in_one_batch_end_with_one_link(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_sharing_app()
    story = chat_of("alice", "kyoto")
    saves = count_saves(app, monkeypatch)

    first, second = commit_together(app, [share(app, story, "alice"), share(app, story, "alice")])

    assert first.unwrap().created is True
    assert second.unwrap().created is False
    assert second.unwrap().link.share_id == first.unwrap().link.share_id
    assert second.unwrap().link.version == 2
    assert saves == [2, 1]  # the second ran alone, after the batch


def test_when_the_combined_save_fails_each_command_is_saved_alone(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, other_replica = open_sharing_app(), open_sharing_app()
    kyoto, osaka = chat_of("alice", "kyoto"), chat_of("bob", "osaka")
    save = app.save
    other_link: list[ShareLinkView] = []

    def save_after_another_replica_shared_kyoto(*aggregates: Any, **kwargs: Any) -> Any:
        if not other_link:
            other_link.append(other_replica.share_chat(kyoto.chat, "alice").link)
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(app, "save", save_after_another_replica_shared_kyoto)

    on_kyoto, on_osaka = commit_together(
        app, [share(app, kyoto, "alice"), share(app, osaka, "bob")]
    )

    assert on_kyoto.unwrap().created is False
    assert on_kyoto.unwrap().link.share_id == other_link[0].share_id
    assert on_osaka.unwrap().created is True
    assert app.live_link_of_chat("osaka") == on_osaka.unwrap().link


async def test_concurrent_requests_are_batched_and_each_gets_its_answer(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_sharing_app()
    chats = [chat_of("alice", f"chat-{n}") for n in range(20)]
    saves = count_saves(app, monkeypatch)
    committer = GroupCommitter(app, window_seconds=0.02, max_batch=64)

    results = await asyncio.gather(
        *(committer.run(share(app, story, "alice")) for story in chats),
        committer.run(share(app, chats[0], "mallory")),
        return_exceptions=True,
    )

    *shared, refused = results
    assert isinstance(refused, NotChatOwner)
    assert all(not isinstance(result, BaseException) and result.created for result in shared)
    assert len(saves) < len(chats)
    await committer.drain()


async def test_under_load_a_full_batch_goes_at_once_and_the_next_follows_it(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_sharing_app()
    chats = [chat_of("alice", f"chat-{n}") for n in range(7)]
    saves = count_saves(app, monkeypatch)
    # A window far longer than the test: only full batches and finishing batches start any.
    committer = GroupCommitter(app, window_seconds=60, max_batch=3, max_in_flight=1)

    requests = [asyncio.ensure_future(committer.run(share(app, story, "alice"))) for story in chats]
    done, _ = await asyncio.wait(requests, timeout=5)

    assert len(done) == len(chats)
    assert all(request.result().created for request in requests)
    assert saves == [6, 6, 2]
    await committer.drain()


async def test_drain_answers_what_waits_for_its_window(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    committer = GroupCommitter(app, window_seconds=60)
    request = asyncio.ensure_future(committer.run(share(app, chat_of("alice", "kyoto"), "alice")))
    await asyncio.sleep(0.01)
    assert not request.done()

    await committer.drain()

    assert request.result().created is True


async def test_a_command_on_a_chat_being_saved_waits_for_the_next_batch(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three shares of one chat and one of another arrive together: each batch holds one
    command per chat, so the other chat's answer does not wait for the second and third
    share of the first, and no save meets a version another batch has just taken."""
    app = open_sharing_app()
    kyoto, osaka = chat_of("alice", "kyoto"), chat_of("bob", "osaka")
    saves = count_saves(app, monkeypatch)
    committer = GroupCommitter(app, window_seconds=0.01, max_in_flight=2)
    happened: list[str] = []

    async def command(label: str, story: ChatStory, user_id: str) -> Any:
        def decide() -> Any:
            happened.append(f"decide {label}")
            return app.decide_share(story.chat, user_id)

        result = await committer.run(decide, chat_key(story.chat_id))
        happened.append(f"answer {label}")
        return result

    results = await asyncio.gather(
        command("kyoto-1", kyoto, "alice"),
        command("kyoto-2", kyoto, "alice"),
        command("osaka", osaka, "bob"),
        command("kyoto-3", kyoto, "alice"),
    )

    assert [result.created for result in results] == [True, False, True, False]
    assert len({results[0].link.share_id, results[1].link.share_id, results[3].link.share_id}) == 1
    assert [result.link.version for result in (results[0], results[1], results[3])] == [1, 2, 3]
    assert saves == [4, 1, 1]  # kyoto-1 with osaka, then kyoto-2, then kyoto-3: none failed
    assert happened.index("answer osaka") < happened.index("decide kyoto-2")
    await committer.drain()
