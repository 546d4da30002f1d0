"""The storage tests' bucket: moto's threaded S3 server on a free loopback port (real HTTP, the real S3
protocol), one per test module, and a fresh bucket per test with the environment boto3 reads; the CLI's
sessions as FakeSessions."""

from __future__ import annotations

import socket
import uuid

import pytest
from fakes import FakeSession


@pytest.fixture(scope="module")
def s3_endpoint():
    moto_server = pytest.importorskip("moto.server")
    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, tmp_path):
    """The environment boto3 reads, pointing at moto; no ~/.aws files, no instance metadata."""
    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
                        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
                        "AWS_CONFIG_FILE": str(tmp_path / "no-config")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("HIGGS_CACHE", raising=False)
    import boto3

    client = boto3.client("s3")
    bucket = f"higgs-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def loads(fake_sessions) -> list[FakeSession]:
    """The CLI's sessions are FakeSessions (the storage is under test, not the model)."""
    return fake_sessions.known(None).made
