"""End-to-end fixtures. The stacks themselves (``local_stack``, ``s3_stack``) are session fixtures of
tests/conftest.py, shared with tests/batch; ``Stack`` and the helpers live in tests/e2e/stack.py and are re-exported
here for the tests of this package."""

from __future__ import annotations

import pytest

from .stack import CONTENT, STYLE, Stack, descendants, running, wait_until

__all__ = ["CONTENT", "STYLE", "Stack", "descendants", "running", "wait_until"]


@pytest.fixture(params=["local", "s3"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """The same test through local-directory storage and through S3."""
    return request.getfixturevalue(f"{request.param}_stack")
