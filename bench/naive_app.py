"""The anchor: how tutorials serve a Keras model, for comparison only (never used by the service).

``model.predict`` per request, inside an ``async def`` route, so every call blocks the event loop.
Run with ``uvicorn bench.naive_app:app``; ``MODEL_VERSION_DIR`` picks the same SavedModel.
"""

from __future__ import annotations

import io
import os

import keras
import numpy as np
from fastapi import FastAPI, File, UploadFile
from fastapi.responses import Response
from PIL import Image

from app.inference import latest_version
from app.settings import DEFAULT_MODEL_DIR

path = os.environ.get("MODEL_VERSION_DIR") or str(latest_version(DEFAULT_MODEL_DIR))
model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.TFSMLayer(path, call_endpoint="serve")])
app = FastAPI()


@app.post("/denoise")
async def denoise(file: UploadFile = File(...)) -> Response:  # noqa: B008 - the tutorial style on purpose
    image = Image.open(io.BytesIO(await file.read())).convert("L").resize((28, 28))
    x = np.asarray(image, dtype=np.float32).reshape(1, 28, 28, 1) / 255.0
    y = model.predict(x)
    error = float(np.mean((x - y) ** 2))
    out = io.BytesIO()
    Image.fromarray((y[0, :, :, 0] * 255).astype(np.uint8)).save(out, format="PNG")
    return Response(out.getvalue(), media_type="image/png", headers={"X-Reconstruction-Error": str(error)})
