"""Fuzzing the app over its own OpenAPI document with schemathesis, against a real `stagevote serve` process.

The schema is the app's own (`create_app(...).openapi()`). Every operation is fuzzed as each role
(anonymous, fan, admin, a developer's API key), with schema-valid (positive) and invalid (negative) data,
and once more with its ids pinned to rows that exist (so a call gets past the 404 into the rules). Each
answer must: not be a 5xx but a declared 503; have a status, content type, headers and body the document
declares for it; be `application/problem+json` with `type/title/status/detail` when it is an error.

Roles run in an order that keeps each one's credential alive: the API key and the fan before the admin,
whose fuzzing may revoke keys and change roles; `POST /auth/logout` is fuzzed last for each role.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.strategies as st
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twilio.request_validator import RequestValidator

from stagevote.app import create_app
from stagevote.config import Settings

ROLES = ("anonymous", "api_key", "fan", "admin")  # in this order: see the module's docstring
PASSWORD = "correct horse battery"
TWILIO_TOKEN = "fuzz-twilio-token"
SECRET_KEY = "fuzz-secret-" + "f" * 40
PROBLEM_KEYS = {"type", "title", "status", "detail"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """`stagevote serve` on a loopback port, on a database of its own."""

    url: str
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "stagevote.cli", *args], env=self.env, cwd=self.cwd, capture_output=True, check=False
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()


@contextlib.contextmanager
def serve(database_url: str, tmp: Path, *, redis_url: str | None = None) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    env |= {
        "STAGEVOTE_DATABASE_URL": database_url,
        "STAGEVOTE_SECRET_KEY": SECRET_KEY,
        "STAGEVOTE_SECRET_KEY_FILE": str(tmp / "unused-key"),
        "STAGEVOTE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "STAGEVOTE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "STAGEVOTE_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "STAGEVOTE_RECAP_STORAGE": f"file://{tmp}/recaps",
        "STAGEVOTE_LOG_LEVEL": "WARNING",
    }
    if redis_url:
        env |= {"STAGEVOTE_REDIS_URL": redis_url, "STAGEVOTE_REDIS_KEY_PREFIX": f"stagevote-fuzz:{uuid.uuid4().hex}:"}
    server = Server(f"http://127.0.0.1:{port}", env, tmp)
    server.cli("migrate")
    log = (tmp / "server.log").open("w")
    server.process = subprocess.Popen(
        [sys.executable, "-m", "stagevote.cli", "serve", "--port", str(port)], env=env, cwd=tmp, stdout=log, stderr=log
    )
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/health").status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the server did not start: see {tmp / 'server.log'}")
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=20)


@dataclass
class Seeded:
    """Credentials of each role and ids of rows that exist, for pinned path parameters."""

    headers: dict[str, dict[str, str]]
    ids: dict[str, list[int | str]]


def seed(server: Server) -> Seeded:
    """An admin, a developer and its API key, a fan; events in each status with artists, attendees, a ballot."""
    admin_email, developer_email = "admin@fuzz.example", "developer@fuzz.example"
    server.cli("create-user", "--email", admin_email, "--password", PASSWORD, "--role", "admin")
    server.cli("create-user", "--email", developer_email, "--password", PASSWORD, "--role", "developer")
    with httpx.Client(base_url=server.url, timeout=30) as http:

        def login(email: str) -> dict[str, str]:
            r = http.post("/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['accessToken']}"}

        admin, developer = login(admin_email), login(developer_email)
        fan = http.post("/auth/signup", json={"email": "fan@fuzz.example", "password": PASSWORD})
        assert fan.status_code == 201, fan.text
        key = http.post("/auth/api-keys", json={"name": "fuzz"}, headers=developer).json()
        events: list[int | str] = []
        artists: list[int | str] = []
        attendees: list[int | str] = []
        for n, actions in enumerate(([], ["publish"], ["publish", "start"], ["publish", "start"])):
            body = {
                "title": f"Fuzz fest {n}",
                "startDate": "2026-12-01T19:00:00Z",
                "endDate": "2026-12-01T23:00:00Z",
                "keyword": f"FUZZ{n}",
                "voteConfig": {"rounds": [{"number": 1, "name": "Heats"}, {"number": 2, "name": "Final"}]},
            }
            event = http.post("/events", json=body, headers=admin).json()
            events.append(event["id"])
            for name in ("Owls", "Foxes"):
                invited = http.post(f"/events/{event['id']}/artists", json={"name": name}, headers=admin).json()
                artists.append(invited["artistId"])
                http.post(f"/events/{event['id']}/artists/{invited['artistId']}/accept", headers=admin)
            for action in actions:
                http.post(f"/events/{event['id']}/{action}", headers=admin)
            if actions:
                for k in range(2):
                    joined = http.post(f"/events/{event['id']}/join", json={"phoneNumber": f"+1312555{n}{k:03d}"})
                    attendees.append(joined.json()["attendeeId"])
        http.post(f"/events/{events[2]}/rounds/1/open", headers=admin)
    return Seeded(
        headers={
            "anonymous": {},
            "fan": {"Authorization": f"Bearer {fan.json()['accessToken']}"},
            "admin": admin,
            "api_key": {"Authorization": f"Bearer {key['key']}"},
        },
        ids={
            "event_id": events,
            "artist_id": artists,
            "attendee_id": attendees,
            "number": [1, 2],
            "key_id": [key["id"]],
            "user_id": [1, 2, 3],
            "keyword": ["FUZZ2"],
        },
    )


def schema_of_app() -> schemathesis.BaseSchema:
    """The OpenAPI document the app serves, loaded without a server (it is computed from the routes)."""
    document = create_app(Settings(database_url="sqlite:///:memory:", secret_key=SECRET_KEY)).openapi()
    return schemathesis.openapi.from_dict(json.loads(json.dumps(document)))


@dataclass
class Report:
    operations: set[str] = field(default_factory=set)
    examples: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _signed(case: Any, base_url: str) -> dict[str, str]:
    """Twilio's signature over a generated webhook form, so the fuzzing gets past it to the handler."""
    if not case.path.startswith("/sms/") or not isinstance(case.body, dict):
        return {}
    params = {str(k): str(v) for k, v in case.body.items() if not isinstance(v, (dict, list))}
    if params != case.body:
        return {}
    url = f"{base_url}{case.formatted_path}"
    return {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, params)}


def _problem_failure(response: schemathesis.Response) -> str | None:
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type != "application/problem+json":
        return f"an error answered as {content_type!r}, not problem+json"
    body = response.json()
    if not set(body) >= PROBLEM_KEYS or body["status"] != response.status_code:
        return f"a problem without {sorted(PROBLEM_KEYS - set(body))} or with another status: {body}"
    return None


def fuzz(
    base_url: str,
    seeded: Seeded,
    *,
    examples: int,
    roles: tuple[str, ...] = ROLES,
    seed_value: int | None = 0,
) -> Report:
    """Every operation of the document, as each role, `examples` cases per mode (positive, negative, pinned ids)."""
    schema = schema_of_app()
    report = Report()
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.path == "/auth/logout", op.method, op.path))
    session = requests.Session()
    for role in roles:
        headers = seeded.headers[role]
        for operation in operations:
            label = f"{operation.method.upper()} {operation.path}"
            report.operations.add(label)
            pinned = {n: seeded.ids[n] for n in (p.name for p in operation.path_parameters) if n in seeded.ids}
            strategies = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
            if pinned:
                strategies.append(
                    st.fixed_dictionaries({n: st.sampled_from(v) for n, v in pinned.items()}).flatmap(
                        lambda values, op=operation: op.as_strategy(GenerationMode.POSITIVE, path_parameters=values)
                    )
                )
            for strategy in strategies:
                _run(strategy, operation, label, role, headers, base_url, session, report, examples, seed_value)
    return report


def _run(
    strategy: Any,
    operation: Any,
    label: str,
    role: str,
    headers: dict[str, str],
    base_url: str,
    session: requests.Session,
    report: Report,
    examples: int,
    seed_value: int | None,
) -> None:
    failures: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed_value is not None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @given(case=strategy)
    def one(case: Any) -> None:
        sent = {**headers, **_signed(case, base_url)}
        response = case.call(base_url=base_url, session=session, headers=sent, timeout=30)
        report.examples += 1
        report.by_status[response.status_code] = report.by_status.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS, headers=sent)
        except (Exception, BaseExceptionGroup) as exc:  # a check failed: record it, keep fuzzing the others
            found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
            for failure in found:
                title = getattr(failure, "title", type(failure).__name__)
                failures.append(f"{label} as {role}: {response.status_code} {title}\n{str(failure)[:1500]}")
            return
        problem = _problem_failure(response)
        if problem:
            curl = case.as_curl_command(headers=sent)
            failures.append(f"{label} as {role}: {response.status_code} {problem}\n{curl}")

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        one()
    # one failure per (operation, role, kind) is enough to act on
    seen: set[str] = set()
    for failure in failures:
        head = failure.split("\n", 1)[0][:160]
        if head not in seen:
            seen.add(head)
            report.failures.append(failure)
