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

from flask import Flask, Response, request

PAGE_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
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


def install(app: Flask, page_blueprint: str) -> None:
    """Add the headers to every response of ``app``; the routes of ``page_blueprint`` get the page policy."""

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in COMMON_HEADERS.items():
            response.headers.setdefault(name, value)
        csp = PAGE_CSP if request.blueprint == page_blueprint else API_CSP
        response.headers.setdefault("Content-Security-Policy", csp)
        return response
