"""The framework ceiling of `make bench`: FastAPI on the same uvicorn, parsing the same bodies, touching nothing.

`POST /events/{id}/vote` validates the vote body with stagevote's own `VoteRequest` and answers 201
with a vote-shaped JSON body; `POST /sms/join` parses the form and answers TwiML. No database, no
Redis, no middleware: what stagevote cannot beat on this machine with this load.
Run: `uvicorn bench.bare_app:app --workers 2` (bench/vote_path.py does).
"""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI, Request, Response, status

from stagevote.voting.schemas import VoteRead, VoteRequest

app = FastAPI()


@app.post("/events/{event_id}/vote", status_code=status.HTTP_201_CREATED)
async def vote(event_id: int, body: VoteRequest) -> VoteRead:
    return VoteRead(
        id=1,
        event_id=event_id,
        round=body.round,
        artist_id=body.artist_id,
        token=body.token,
        created_at=dt.datetime.now(dt.UTC),
        receipt="BARE2FRAMEWORK23",  # the same shape as a receipt: what the answer carries, not its cost
    )


@app.post("/sms/join")
async def sms(request: Request) -> Response:
    form = await request.form()
    reply = f"<Response><Message>Vote counted: {form.get('Body')}</Message></Response>"
    return Response(reply, media_type="text/xml")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
