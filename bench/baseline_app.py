"""The baseline of workload 1: a trivial FastAPI POST endpoint, sync and async, nothing else.

Validates a small body and returns a small JSON, served by uvicorn with the settings `creditdesk
serve` uses (one worker, access log on, log level info):

    python -m bench.baseline_app --port 8100
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

app = FastAPI()


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    amount: int = Field(ge=1, le=1_000_000)
    tags: list[str] = Field(default_factory=list, max_length=10)


class Answer(BaseModel):
    id: str
    name: str
    amount: int


@app.post("/sync", status_code=201, response_model=Answer)
def post_sync(body: Body):
    return Answer(id="x_1", name=body.name, amount=body.amount)


@app.post("/async", status_code=201, response_model=Answer)
async def post_async(body: Body):
    return Answer(id="x_1", name=body.name, amount=body.amount)


def main(argv=None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args(argv)
    # Same arguments as creditdesk.cli.serve passes to uvicorn.run for one worker.
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="info")


if __name__ == "__main__":
    main()
