"""The pages' Content-Security-Policy names where presigned storage URLs point, and nothing else (unit)."""

from __future__ import annotations

from api.security_headers import page_csp, storage_origins
from shared.settings import Settings


def test_local_storage_needs_no_other_origin():
    assert storage_origins(Settings(storage="file:///tmp/x")) == ()
    assert "connect-src 'self';" in page_csp(())


def test_an_s3_endpoint_is_allowed_for_images_media_and_fetch_only():
    settings = Settings(storage="s3://bucket", s3_endpoint_url="http://minio.internal:9000/some/path")
    origins = storage_origins(settings)
    assert origins == ("http://minio.internal:9000",)
    directives = dict(part.split(" ", 1) for part in page_csp(origins).split("; "))
    for name in ("img-src", "media-src", "connect-src"):
        assert directives[name].endswith(" http://minio.internal:9000")
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert storage_origins(Settings(storage="s3://bucket")) == ("https://*.amazonaws.com",)
