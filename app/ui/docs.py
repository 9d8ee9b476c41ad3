"""The API's own documentation (/docs, /redoc, /openapi.json), for API keys and console sessions only:
every route but health and the console's static assets needs a key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.auth.deps import current_key
from app.errors import Unauthorized
from app.ui.deps import console_user
from app.ui.pages import SESSION_COOKIE, SignInRequired, sign_in_url

router = APIRouter(include_in_schema=False)


async def _allowed(request: Request) -> bool:
    """A valid bearer key or console session; raises Unauthorized for a bad bearer key."""
    if request.headers.get("authorization"):
        await current_key(request)
        return True
    if request.cookies.get(SESSION_COOKIE):
        try:
            await console_user(request)
        except SignInRequired:
            return False
        return True
    return False


@router.get("/openapi.json")
async def openapi(request: Request) -> Response:
    if not await _allowed(request):
        raise Unauthorized("the API schema needs an API key (Authorization: Bearer …) or a console session")
    return JSONResponse(request.app.openapi())


async def _page(request: Request, html: Response) -> Response:
    if not await _allowed(request):
        return RedirectResponse(sign_in_url("required", request.url.path), status_code=303)
    return html


VENDOR = "/ui/static/vendor"  # swagger-ui-dist and redoc from npm: no CDN, works offline


@router.get("/docs")
async def swagger(request: Request) -> Response:
    html = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="chatver API",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
    )
    return await _page(request, html)


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    html = get_redoc_html(
        openapi_url="/openapi.json",
        title="chatver API",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )
    return await _page(request, html)
