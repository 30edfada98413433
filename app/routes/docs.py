"""Pages for people: Swagger UI and the demo page, served with every file they need.

FastAPI's default docs page loads Swagger UI from a CDN and its favicon from fastapi's site: on a
machine with no route to the internet it stays blank. Here everything comes from ``app/static``
(Swagger UI vendored from npm's swagger-ui-dist, its version and checksums beside it).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_URL = "/static"
# An upload of a number above its fit=digits answer, shown beside `fit` on the Swagger page
# (written by `python -m bench.numbers`).
FIT_DIGITS_PICTURE = "fit-digits.png"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/docs")


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Denoising service - Swagger UI",
        swagger_js_url=f"{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_URL}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_URL}/swagger-ui/favicon-32x32.png",
        # No badge from validator.swagger.io: the page must not call another host.
        swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": True},
    )
    # Our own stylesheet last: 28x28 answers are shown enlarged, with crisp pixels.
    html = bytes(page.body).decode().replace("</head>", f'<link rel="stylesheet" href="{STATIC_URL}/docs.css"></head>')
    return HTMLResponse(html)


@router.get("/demo")
async def demo() -> FileResponse:
    return FileResponse(STATIC_DIR / "demo" / "index.html", media_type="text/html")
