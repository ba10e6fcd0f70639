"""What goes wrong when starting the stack says so in one sentence naming the cause and the fix."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from devstack import kafka, postgres
from devstack.errors import StackError
from devstack.ports import require_free


def test_a_port_already_taken_names_the_port_and_the_variable() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(
            StackError, match=rf"Port {port} is already taken.*CHATSHARE_KAFKA_PORT"
        ):
            require_free(port, "Kafka", "CHATSHARE_KAFKA_PORT")


def test_missing_java_says_which_java_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(StackError, match=r"Java is not installed.*Java 17"):
        kafka.require_java()


def test_missing_maven_says_how_to_get_the_jars(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(StackError, match=r"Maven \(mvn\) is not installed"):
        kafka.ensure_jars(tmp_path / "libs")


def test_maven_failing_to_fetch_shows_what_maven_said(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    mvn = fake_bin / "mvn"
    mvn.write_text(
        "#!/bin/sh\necho 'Could not transfer artifact org.apache.kafka:kafka_2.13' >&2\nexit 1\n"
    )
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(
        StackError, match=r"(?s)could not fetch the Kafka jars.*Could not transfer artifact"
    ):
        kafka.ensure_jars(tmp_path / "libs")
    assert not (tmp_path / "libs").exists()  # a failed download never passes for jars


def test_a_half_formatted_kafka_folder_is_refused_not_reformatted(tmp_path: Path) -> None:
    node = kafka.KafkaNode(home=tmp_path, port=1, controller_port=2, message_max_bytes=1)
    node.data_dir.mkdir()
    (node.data_dir / "bootstrap.checkpoint").write_text("partial")
    with pytest.raises(StackError, match=r"half-formatted\. Remove that folder"):
        kafka.format_storage_once(node, tmp_path, tmp_path / "server.properties")
    assert (node.data_dir / "bootstrap.checkpoint").exists()


def test_an_interrupted_initdb_is_refused(tmp_path: Path) -> None:
    node = postgres.PostgresNode(home=tmp_path, port=1)
    node.data_dir.mkdir()
    (node.data_dir / "base").mkdir()
    with pytest.raises(StackError, match="initdb was interrupted"):
        postgres.initdb_once(node, postgres.binaries(), None)


def test_a_postgres_that_will_not_start_shows_its_log() -> None:
    home = Path(tempfile.mkdtemp(prefix="chatshare-test-pg-broken-"))
    node = postgres.PostgresNode(home=home, port=1)  # port 1 is privileged: the server cannot bind
    try:
        with pytest.raises(StackError, match="PostgreSQL exited while starting"):
            postgres.start(node, timeout=30)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_a_data_folder_the_server_user_cannot_reach_is_named(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    node = postgres.PostgresNode(home=private / "pg", port=1)
    with pytest.raises(StackError, match="cannot reach"):
        postgres.start(node, timeout=10)
