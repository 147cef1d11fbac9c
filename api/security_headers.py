"""Security headers on every response: the studio's pages get a Content-Security-Policy that lets them load only
their own scripts, styles and images (plus ``blob:``/``data:`` images for local previews of the files a person
picks); every other response (JSON, PNG, ZIP) gets one that allows nothing, since none of them is a page.

Why each header (OWASP Secure Headers Project, MDN):

- ``Content-Security-Policy``: no inline script or style anywhere (the page's JavaScript is in ``/static``), so an
  injected ``<script>`` cannot run; ``frame-ancestors 'none'`` forbids framing (clickjacking), ``base-uri`` and
  ``form-action`` stop a ``<base>`` or ``<form>`` injection from redirecting requests, ``object-src 'none'`` plugins;
- ``X-Frame-Options: DENY``: the same as ``frame-ancestors`` for browsers that predate CSP level 2;
- ``X-Content-Type-Options: nosniff``: a stored image is never reinterpreted as HTML or script;
- ``Referrer-Policy: no-referrer``: job ids in page URLs never leak to other sites;
- ``Permissions-Policy``: the studio needs no camera, microphone, location or sensors, so none is granted (only
  features Chromium recognises are listed; an unknown one is a console error);
- ``Cross-Origin-Opener-Policy`` / ``Cross-Origin-Resource-Policy``: other sites cannot script our window or embed
  our responses.

The page authenticates with a bearer key from ``sessionStorage``, never a cookie, so there is no CSRF surface to
guard with tokens.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

from shared.settings import Settings


def page_csp(storage_origins: tuple[str, ...] = ()) -> str:
    """The pages' policy. ``storage_origins``: where the result and preview routes redirect to (presigned S3 URLs),
    which the page fetches as images and files."""
    extra = "".join(f" {origin}" for origin in storage_origins)
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' blob: data:{extra}",
        f"media-src 'self' blob:{extra}",
        f"connect-src 'self'{extra}",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


PAGE_CSP = page_csp()
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen", "geolocation",
    "gyroscope", "magnetometer", "microphone", "midi", "payment", "picture-in-picture", "publickey-credentials-get",
    "screen-wake-lock", "sync-xhr", "usb", "xr-spatial-tracking"))

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def storage_origins(settings: Settings) -> tuple[str, ...]:
    """The origin presigned URLs point at: the S3 endpoint's (MinIO, moto...), or AWS S3's hosts when no endpoint is
    set; none for local storage (its bytes stream through the API). The bucket also needs a CORS rule allowing GET
    from the API's origin, since the page reads the images with fetch()."""
    if not settings.storage.startswith("s3://"):
        return ()
    if not settings.s3_endpoint_url:
        return ("https://*.amazonaws.com",)
    parts = urlsplit(settings.s3_endpoint_url)
    return (f"{parts.scheme}://{parts.netloc}",)


def install(app: Flask, page_blueprint: str, settings: Settings) -> None:
    """Add the headers to every response of ``app``; the routes of ``page_blueprint`` get the page policy."""
    csp_for_pages = page_csp(storage_origins(settings))

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in COMMON_HEADERS.items():
            response.headers.setdefault(name, value)
        csp = csp_for_pages if request.blueprint == page_blueprint else API_CSP
        response.headers.setdefault("Content-Security-Policy", csp)
        return response
