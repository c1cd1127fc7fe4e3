"""Recap pages on an S3-compatible store: moto in server mode on a loopback port, written with boto3 and fetched
back over HTTP; when the store is down the close still succeeds and a later render answers 503."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import httpx
import pytest
from httpx import AsyncClient
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from stagevote.config import Settings
from stagevote.core.runtime import Runtime
from tests.conftest import Actor
from tests.factories import live_show, web_fan
from tests.http import ok, problem
from tests.realtime.test_live import free_port
from tests.reports.conftest import web_vote

BUCKET = "stagevote-recaps"
PUBLIC_READ = json.dumps(  # what a bucket of public pages says (no object ACLs: the bucket owner decides)
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
        ],
    }
)


def make_bucket(endpoint: str) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_policy(Bucket=BUCKET, Policy=PUBLIC_READ)


@pytest.fixture
def s3() -> Iterator[ThreadedMotoServer]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    make_bucket(f"http://{host}:{port}")
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, s3: ThreadedMotoServer) -> Settings:
    host, port = s3.get_host_and_port()
    return settings.model_copy(
        update={
            "recap_storage": f"s3://{BUCKET}/recaps/",
            "s3_endpoint_url": f"http://{host}:{port}",
            "s3_access_key_id": "testing",
            "s3_secret_access_key": SecretStr("testing"),
        }
    )


async def test_the_recap_is_written_to_the_bucket_and_served_from_it(
    client: AsyncClient, runtime: Runtime, admin: Actor, s3: ThreadedMotoServer
) -> None:
    show = await live_show(client, runtime, admin, names=("Owls", "Foxes"))
    await web_vote(client, show, await web_fan(runtime, show.id), "Owls", 1)
    ok(await client.post(f"/events/{show.id}/close", headers=admin.headers))
    host, port = s3.get_host_and_port()
    url = ok(await client.get(f"/events/{show.id}/recap"))["url"]
    assert url.startswith(f"http://{host}:{port}/{BUCKET}/recaps/{show.id}-")
    async with httpx.AsyncClient() as http:
        page = await http.get(url)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert show.event["title"] in page.text and "Winner: <strong>Owls</strong>" in page.text
    assert page.headers["cache-control"] == "public, max-age=300"
    name = url.rsplit("/", 1)[1]
    problem(await client.get(f"/recaps/{name}"), 404)  # the app serves a folder, not the bucket


async def test_a_store_that_is_down_never_fails_the_close(
    client: AsyncClient, runtime: Runtime, admin: Actor, s3: ThreadedMotoServer
) -> None:
    show = await live_show(client, runtime, admin, names=("Owls",))
    s3.stop()
    closed = ok(await client.post(f"/events/{show.id}/close", headers=admin.headers))
    assert closed["status"] == "closed"
    problem(await client.get(f"/events/{show.id}/recap"), 404)
    unavailable = problem(await client.post(f"/events/{show.id}/recap", headers=admin.headers), 503)
    assert unavailable["type"].endswith("recap-storage-unavailable")
    s3.start()  # the same port: the bucket is gone with the old server, so make it again
    make_bucket(str(runtime.settings.s3_endpoint_url))
    ok(await client.post(f"/events/{show.id}/recap", headers=admin.headers), 201)
    ok(await client.get(f"/events/{show.id}/recap"))
