"""Vote receipts: every accepted vote answers a receipt, which finds the vote again and, once its round is
sealed, proves the vote is in the sealed root with nothing but hashlib (core/merkle.py)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import random
import re

from httpx import AsyncClient

from stagevote.core import merkle
from stagevote.core.runtime import Runtime
from stagevote.voting.receipts import receipt_for, receipt_v1, vote_id_of
from tests.conftest import Actor
from tests.factories import Stage, build_stage
from tests.http import ok

RECEIPT = re.compile(r"^[A-Z2-7]{16}$")


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _random_vote(rng: random.Random, n: int) -> tuple[dict[str, object], dt.datetime, dt.datetime]:
    """Random facts of a vote, the instant it was cast, and that instant as given (UTC, another zone, naive)."""
    facts: dict[str, object] = {
        "event_id": rng.randrange(1, 10**6),
        "round_number": rng.randrange(1, 20),
        "attendee_id": rng.randrange(1, 10**9),
        "artist_id": rng.randrange(1, 10**6),
        "token": f"t-{rng.getrandbits(64):x}",
    }
    moment = dt.datetime(2026, 12, 1, 19, 5, 3, rng.randrange(10**6), tzinfo=dt.UTC) + dt.timedelta(
        seconds=rng.randrange(10**7)
    )
    # the same instant, given as UTC, as another zone, or naive (read as UTC), gives the same receipt
    paris = dt.timezone(dt.timedelta(hours=1))
    return facts, moment, [moment, moment.astimezone(paris), moment.replace(tzinfo=None)][n % 3]


_FACTS = ("event_id", "round_number", "attendee_id", "artist_id")


def test_a_receipt_is_what_the_module_describes_and_reads_back_to_its_vote() -> None:
    """Version 2: a 32-bit keyed BLAKE2b tag of the facts (the time in microseconds since 1970), then the id
    hidden under a keyed BLAKE2b mask of the tag, in base32, whatever the encoder's shortcuts: checked
    against the standard library over many random votes; the server reads the id back from the code alone."""
    rng = random.Random(16)
    key = hmac.new(b"s3cret", b"stagevote vote receipts", hashlib.sha256).digest()
    id_key = hmac.new(b"s3cret", b"stagevote vote receipt ids", hashlib.sha256).digest()
    for n in range(3000):
        facts, moment, given = _random_vote(rng, n)
        vote_id = rng.randrange(1, 2**31) if n % 2 else rng.randrange(1, 2**48)
        micros = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
        text = f"v2|{vote_id}|" + "|".join(str(facts[k]) for k in _FACTS) + f"|{micros}|{facts['token']}"
        tag = hashlib.blake2b(text.encode(), key=key, digest_size=4).digest()
        mask = int.from_bytes(hashlib.blake2b(tag, key=id_key, digest_size=6).digest(), "big")
        expected = base64.b32encode(tag + (vote_id ^ mask).to_bytes(6, "big")).decode()
        code = receipt_for("s3cret", vote_id=vote_id, created_at=given, **facts)  # type: ignore[arg-type]
        assert code == expected
        assert vote_id_of("s3cret", code) == vote_id
        assert vote_id_of("other secret", code) != vote_id  # the key hides the id
    # what is not a receipt reads back to nothing
    for junk in ("", "A" * 15, "A" * 17, "0" * 16, "1" * 16, "a" * 16):
        assert vote_id_of("s3cret", junk) is None, junk


def test_a_version_1_receipt_is_the_hmac_the_module_describes() -> None:
    """Votes cast before migration 0012 keep theirs: HMAC-SHA256 of the facts, its first 80 bits in base32."""
    rng = random.Random(6)
    key = hmac.new(b"s3cret", b"stagevote vote receipts", hashlib.sha256).digest()
    for n in range(3000):
        facts, moment, given = _random_vote(rng, n)
        text = "|".join(["v1", *(str(facts[k]) for k in _FACTS), moment.isoformat(timespec="microseconds")])
        expected = base64.b32encode(hmac.digest(key, f"{text}|{facts['token']}".encode(), "sha256")[:10]).decode()
        assert receipt_v1("s3cret", created_at=given, **facts) == expected  # type: ignore[arg-type]


def test_the_tree_is_the_one_the_readme_describes() -> None:
    receipts = ["CCCCCCCCCCCCCCCC", "AAAAAAAAAAAAAAAA", "EEEEEEEEEEEEEEEE", "BBBBBBBBBBBBBBBB", "DDDDDDDDDDDDDDDD"]
    leaves = sorted(sha(r.encode()) for r in receipts)
    # five leaves: pairs, the fifth carried up unchanged twice, then joined at the top
    left = sha(sha(leaves[0] + leaves[1]) + sha(leaves[2] + leaves[3]))
    assert merkle.root_of(receipts) == sha(left + leaves[4]).hex()
    assert merkle.root_of(receipts[:1]) == sha(receipts[0].encode()).hex()  # one vote: its leaf is the root
    assert merkle.root_of([]) == hashlib.sha256(b"").hexdigest()
    root = merkle.root_of(receipts)
    for receipt in receipts:
        proof = merkle.proof_of(receipts, receipt)
        assert proof is not None and merkle.verify_inclusion(receipt, proof, root)
    # the carried-up leaf's proof has one step only: the node it meets at the top
    last = next(r for r in receipts if sha(r.encode()) == leaves[4])
    assert merkle.proof_of(receipts, last) == [{"side": "left", "hash": left.hex()}]
    assert merkle.proof_of(receipts, "ZZZZZZZZZZZZZZZZ") is None


def test_a_tampered_proof_or_receipt_does_not_verify() -> None:
    receipts = [f"RECEIPT{n:09d}" for n in range(7)]
    root = merkle.root_of(receipts)
    proof = merkle.proof_of(receipts, receipts[3])
    assert proof is not None and merkle.verify_inclusion(receipts[3], proof, root)
    flipped = [dict(step) for step in proof]
    flipped[0]["hash"] = ("0" if flipped[0]["hash"][0] != "0" else "1") + flipped[0]["hash"][1:]
    assert not merkle.verify_inclusion(receipts[3], flipped, root)
    swapped = [dict(step, side="right" if step["side"] == "left" else "left") for step in proof]
    assert not merkle.verify_inclusion(receipts[3], swapped, root)
    assert not merkle.verify_inclusion(receipts[4], proof, root)
    assert not merkle.verify_inclusion(receipts[3], proof[:-1], root)
    assert not merkle.verify_inclusion(receipts[3], [{"side": "up", "hash": "00"}], root)


async def receipt_of(stage: Stage, receipt: str) -> dict[str, object]:
    return ok(await stage.client.get(f"/events/{stage.event_id}/receipts/{receipt}"))  # type: ignore[no-any-return]


async def test_every_vote_answers_a_receipt_that_finds_it_again(stage: Stage) -> None:
    ballots = [await stage.ballot() for _ in range(3)]
    answers = [
        ok(await stage.vote(b, artist), 201) for b, artist in zip(ballots, ("Owls", "Foxes", "Owls"), strict=True)
    ]
    receipts = [a["receipt"] for a in answers]
    assert all(RECEIPT.match(r) for r in receipts) and len(set(receipts)) == 3
    # the same token again: the same vote, the same receipt
    again = await stage.vote(ballots[0], "Owls", token=answers[0]["token"])
    assert again.status_code == 200 and again.json()["receipt"] == receipts[0]
    found = await receipt_of(stage, receipts[1])
    # what the holder learns: that vote's round, artist and status, nothing of anyone else's
    assert found == {
        "receipt": receipts[1],
        "round": 1,
        "artistId": stage.artists["Foxes"],
        "status": "counted",
        "reason": None,
        "root": None,
        "proof": [],
    }
    # typed back by hand: any case, dashes
    typed = receipts[1].lower()[:8] + "-" + receipts[1].lower()[8:]
    assert (await receipt_of(stage, typed))["receipt"] == receipts[1]


async def test_an_unknown_receipt_or_another_events_is_404(
    client: AsyncClient, runtime: Runtime, admin: Actor, stage: Stage
) -> None:
    receipt = ok(await stage.vote(await stage.ballot(), "Owls"), 201)["receipt"]
    other = await build_stage(client, runtime, admin)
    for event_id, code in ((stage.event_id, "A" * 16), (other.event_id, receipt), (stage.event_id, "%20")):
        r = await client.get(f"/events/{event_id}/receipts/{code}")
        assert r.status_code == 404, (event_id, code, r.text)
        assert r.headers["content-type"] == "application/problem+json"


async def test_once_sealed_the_receipt_proves_its_vote_is_in_the_root(stage: Stage) -> None:
    receipts = [
        ok(await stage.vote(await stage.ballot(), artist), 201)["receipt"] for artist in ("Owls",) * 3 + ("Foxes",) * 2
    ]
    await stage.admin_post("/rounds/1/close")
    seal = ok(await stage.client.get(f"/events/{stage.event_id}/rounds/1/seal"))
    assert seal["root"] == merkle.root_of(receipts) and seal["votes"] == 5
    for receipt in receipts:
        found = await receipt_of(stage, receipt)
        assert found["root"] == seal["root"] and found["status"] == "counted"
        proof = found["proof"]
        assert isinstance(proof, list) and proof
        assert merkle.verify_inclusion(receipt, proof, seal["root"])
        tampered = [dict(step) for step in proof]
        tampered[-1]["hash"] = hashlib.sha256(b"another vote").hexdigest()
        assert not merkle.verify_inclusion(receipt, tampered, seal["root"])


async def test_a_changed_vote_gets_a_new_receipt(client: AsyncClient, runtime: Runtime, admin: Actor) -> None:
    stage = await build_stage(client, runtime, admin, allowVoteChange=True)
    ballot = await stage.ballot()
    first = ok(await stage.vote(ballot, "Owls"), 201)["receipt"]
    second = ok(await stage.vote(ballot, "Foxes"), 201)["receipt"]
    assert second != first and RECEIPT.match(second)
    assert (await receipt_of(stage, second))["artistId"] == stage.artists["Foxes"]
    assert (await client.get(f"/events/{stage.event_id}/receipts/{first}")).status_code == 404
