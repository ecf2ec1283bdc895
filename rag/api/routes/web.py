"""What a browser gets: the chat page at `/`, its static files at `/static`, and the API docs (Swagger UI at
/docs, ReDoc at /redoc) built from assets shipped inside the package (rag/web/vendor, see
scripts/vendor-web-assets.sh), so they work offline and send readers to no CDN."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

# Package data (pyproject: tool.setuptools.package-data), so an installed wheel serves the same files.
WEB_DIR = Path(str(resources.files("rag") / "web"))
STATIC_PREFIX = "/static"

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=WEB_DIR)


def _static(request: Request, path: str) -> str:
    # root_path: behind a proxy that mounts the app under a prefix, links must carry it.
    return f"{request.scope.get('root_path', '')}{STATIC_PREFIX}/{path}"


@router.get("/")
def chat_page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=f"{request.scope.get('root_path', '')}{request.app.openapi_url}",
        title=f"{request.app.title} — API docs",
        swagger_js_url=_static(request, "vendor/swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=_static(request, "vendor/swagger-ui/swagger-ui.css"),
        swagger_favicon_url=_static(request, "favicon.svg"),
        # Swagger UI would otherwise send the spec's URL to validator.swagger.io for a badge (hosts other than
        # localhost): no third party learns where this server is.
        swagger_ui_parameters={"validatorUrl": None})


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=f"{request.scope.get('root_path', '')}{request.app.openapi_url}",
        title=f"{request.app.title} — API reference",
        redoc_js_url=_static(request, "vendor/redoc/redoc.standalone.js"),
        redoc_favicon_url=_static(request, "favicon.svg"), with_google_fonts=False)
