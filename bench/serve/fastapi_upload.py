"""The comparison anchor of bench/run_serve_bench.sh: a FastAPI app that only writes an upload to
disk and answers, with the same request and answer shape as `sluice serve`'s upload
(`POST /v1/documents?filename=NAME`, raw body; docs/http_api.md).

    UPLOAD_DIR=/tmp/up python3 -m uvicorn fastapi_upload:app --app-dir bench/serve --port 8000

For every upload it reads the whole body, writes it to UPLOAD_DIR/<doc_id>-<filename> (a fresh
uuid4 per upload, so names never collide; no fsync, the bytes stay in the page cache like any
plain write) and answers 202 with
    {"documents": [{"doc_id": ..., "filename": ..., "size": ..., "status": "queued"}]}.
Nothing is parsed, queued or indexed: it is the "only writes to disk and returns" baseline. No
authentication either (an Authorization header is ignored). A missing `filename` gets FastAPI's
own 422.

The handler is `async def` with a plain blocking write, the usual way such an endpoint is written:
writing ~1 KB to the page cache is cheaper than a hop to the thread pool.
"""

import asyncio.base_events
import os
import socket
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


# uvicorn --workers N binds the listening socket itself with proto 0; accepted sockets inherit it
# and asyncio then leaves TCP_NODELAY off, so every keep-alive answer waits ~40 ms for the client's
# delayed ACK (https://github.com/Kludex/uvicorn/issues/3149, open). That would make the
# two-worker figure a measure of Nagle's algorithm, so TCP_NODELAY is set whatever the proto.
# One worker (uvicorn binds through asyncio, proto 6) behaves exactly as without this.
def _set_nodelay(sock):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


asyncio.base_events._set_nodelay = _set_nodelay

UPLOAD_DIR = os.environ.get("UPLOAD_DIR", "")
if not UPLOAD_DIR:
    raise RuntimeError("fastapi_upload: set UPLOAD_DIR to the directory the uploads go to")
os.makedirs(UPLOAD_DIR, exist_ok=True)

app = FastAPI()


@app.post("/v1/documents", status_code=202)
async def upload(request: Request, filename: str) -> JSONResponse:
    body = await request.body()
    doc_id = uuid.uuid4().hex
    name = os.path.basename(filename) or "upload"
    with open(os.path.join(UPLOAD_DIR, f"{doc_id}-{name}"), "wb") as f:
        f.write(body)
    return JSONResponse(
        status_code=202,
        content={"documents": [{"doc_id": doc_id, "filename": filename, "size": len(body),
                                "status": "queued"}]},
    )
