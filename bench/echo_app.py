"""A plain FastAPI multipart echo, for scale: what any FastAPI service pays for an upload's round trip.

``make bench`` serves it as the service is served (2 workers, uvloop, httptools) and measures it at
32 clients beside the identity engine: their ratio is the service path's own cost, machine aside.
"""

from __future__ import annotations

from fastapi import FastAPI, File, UploadFile
from fastapi.responses import Response

app = FastAPI()


@app.post("/denoise")
async def echo(file: UploadFile = File(...)) -> Response:  # noqa: B008 - FastAPI's documented style
    return Response(await file.read(), media_type="image/png")


@app.get("/readyz")
async def ready() -> dict[str, bool]:
    return {"ready": True}
