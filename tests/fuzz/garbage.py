"""Records no consumer can use, for one topic: random bytes, JSON that is not an event, events
with a field of the wrong type or missing, truncated, of another topic, huge ones, and records
with headers no one can read. Seeded, so a failure can be replayed; every value is checked
against the topic's contract, so none of them is by chance a valid event."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import contracts
from contracts.topics import CHAT_EVENTS, COMMUNITY_EVENTS, SETTINGS_EVENTS, SHARE_EVENTS

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Record:
    kind: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


def now() -> str:
    return datetime.now(UTC).isoformat()


def snapshot() -> dict[str, Any]:
    message = {"id": "m1", "parent_id": None, "role": "user", "content": "hi", "model": None,
               "created_at": now()}  # fmt: skip
    return {
        "title": "Trip",
        "messages": [message],
        "history": {"messages": {"m1": {**message, "children_ids": []}}, "current_id": "m1"},
    }


def envelope(kind: str) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": kind, "schema_version": 1, "occurred_at": now()}


def valid_events(topic: str) -> list[dict[str, Any]]:
    """Valid events of the topic, as JSON objects: the templates garbage is made from."""
    chat = {"chat_id": f"chat-{uuid.uuid4().hex[:8]}", "chat_version": 1}
    link = {"share_id": uuid.uuid4().hex, "chat_id": "chat-1", "owner_id": "u1", "version": 1}
    setting = {"policy_version": 1, "changed_by": "root", "changed_at": now()}
    request_id = {"request_id": str(uuid.uuid4())}
    return {
        CHAT_EVENTS: [
            {**envelope("ChatCreated"), **chat, "owner_id": "u1", "title": "Holiday"},
            {**envelope("MessageAdded"), **chat, "message_id": "m1", "parent_id": None,
             "role": "user", "content": "hello", "model": None},
        ],
        SHARE_EVENTS: [
            {**envelope("ShareCreated"), **link, "chat_version": 1, "snapshot": snapshot()},
            {**envelope("CommunityShareRequested"), **request_id, "chat_id": "chat-1",
             "owner_id": "u1", "access": "public", "policy_version": 1, "snapshot": snapshot()},
        ],
        COMMUNITY_EVENTS: [
            {**envelope("CommunitySharePublished"), **request_id, "community_id": "c1",
             "community_url": "https://community.example/c/1"},
            {**envelope("CommunityShareRejected"), **request_id, "reason": "off"},
        ],
        SETTINGS_EVENTS: [
            {**envelope("CommunitySharingEnabled"), **setting, "setting": "community_sharing",
             "value": True},
            {**envelope("TextToSpeechDisabled"), **setting, "setting": "tts", "value": False},
        ],
    }[topic]  # fmt: skip


def wrong_value(rng: random.Random, value: Any) -> Any:
    """A value of another JSON type than `value` (never null: some fields may be null)."""
    if isinstance(value, bool):
        return rng.choice([0, 1, "true", [], {}])
    if isinstance(value, int):
        return rng.choice([str(value), 1.5, True, [], {}, 0, -7, 10**40])
    if isinstance(value, str):
        return rng.choice([12345, 1.5, True, [], {"text": value}])
    if isinstance(value, dict):
        return rng.choice(["{}", [], 7, True])
    return rng.choice(["x", 7, {}])


def random_bytes(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


class GarbageMaker:
    """Makes garbage for one topic; `make(n)` gives n records of every kind, then the fixed set."""

    def __init__(self, topic: str, seed: int, huge_bytes: int) -> None:
        self.topic = topic
        self.rng = random.Random(f"{seed}:{topic}")
        self.huge_bytes = huge_bytes

    def event(self) -> dict[str, Any]:
        return dict(self.rng.choice(valid_events(self.topic)))

    def random_key(self) -> bytes | None:
        return self.rng.choice([None, b"", random_bytes(self.rng, 8), b"\xff\xfe", b"instance"])

    # The kinds: each returns a value.

    def noise(self) -> bytes:
        return random_bytes(self.rng, self.rng.randint(1, 512))

    def not_an_object(self) -> bytes:
        return self.rng.choice([b"null", b"true", b"42", b'"ChatCreated"', b"[]", b"{}",
                                json_bytes([self.event()])])  # fmt: skip

    def wrong_type(self) -> bytes:
        event = self.event()
        name = self.rng.choice([name for name in event if name != "schema_version"])
        event[name] = wrong_value(self.rng, event[name])
        return json_bytes(event)

    def missing_field(self) -> bytes:
        event = self.event()
        del event[self.rng.choice([name for name in event if name != "schema_version"])]
        return json_bytes(event)

    def unknown_type(self) -> bytes:
        other = self.rng.choice([t for t in (CHAT_EVENTS, SHARE_EVENTS, COMMUNITY_EVENTS,
                                             SETTINGS_EVENTS) if t != self.topic])  # fmt: skip
        return json_bytes(
            self.rng.choice([{**self.event(), "type": "ChatExploded"}, {**self.event(), "type": None},
                             {**self.event(), "schema_version": 2},
                             self.rng.choice(valid_events(other))])
        )  # fmt: skip

    def truncated(self) -> bytes:
        encoded = json_bytes(self.event())
        return encoded[: self.rng.randint(0, len(encoded) - 1)]

    def bad_text(self) -> bytes:
        encoded = json_bytes(self.event())
        at = encoded.index(b'"type"') + 1
        return self.rng.choice([
            encoded[:at] + b"\xff\xfe" + encoded[at:],  # not UTF-8 inside a string
            b"\xef\xbb\xbf" + encoded,  # a byte-order mark
            encoded + b" trailing",
            encoded + encoded,
            encoded.replace(b": 1", b": NaN", 1),
            encoded.replace(b"{", b"{/* comment */", 1),
        ])  # fmt: skip

    KINDS: tuple[str, ...] = ("noise", "not_an_object", "wrong_type", "missing_field",
                              "unknown_type", "truncated", "bad_text")  # fmt: skip

    def huge(self) -> list[Record]:
        """Above the service's snapshot limit, below the topic's: noise, a deep nest, and an
        event whose one wrong field carries a huge text."""
        event = self.event()
        event["occurred_at"] = "x" * self.huge_bytes  # not a time, however long
        depth = self.huge_bytes // 2
        return [
            Record("huge noise", self.random_key(), random_bytes(self.rng, self.huge_bytes)),
            Record("huge nest", self.random_key(), b"[" * depth + b"]" * depth),
            Record("huge event", self.random_key(), json_bytes(event)),
        ]

    def fixed(self) -> list[Record]:
        """The records every topic gets once: empty and absent values, and unreadable headers."""
        unreadable: Headers = [
            ("content-type", b"\xff\xfe"), ("x-null", None), ("traceparent", b"\xff" * 8),
            ("correlation_id", b"\x00\xff"), ("x-dlq-reason", b"spoofed"),
            ("x-dlq-source-offset", b"-1"),
        ]  # fmt: skip
        return [
            Record("empty value", b"k", b""),
            Record("no value", b"k", None),
            Record("unreadable headers", self.random_key(), self.noise(), unreadable),
            Record("json content-type on noise", b"k", self.noise(),
                   [("content-type", b"application/json")]),
            Record("text content-type on bytes", b"k", b"\xff\xfe\xfd",
                   [("content-type", b"text/plain")]),
        ]  # fmt: skip

    def make(self, per_kind: int) -> list[Record]:
        records = [
            Record(kind, self.random_key(), getattr(self, kind)())
            for kind in self.KINDS
            for _ in range(per_kind)
        ]
        records += self.fixed() + self.huge()
        self.rng.shuffle(records)
        return [record for record in records if not_an_event(self.topic, record.value)]


def not_an_event(topic: str, value: bytes | None) -> bool:
    if value is None:
        return True
    try:
        contracts.decode_event(topic, value)
    except contracts.ContractViolation:
        return True
    return False
