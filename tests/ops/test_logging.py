"""Structured logs: JSON lines that carry the job id bound by whoever handles the job."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from shared.logging import JOB_ID, JobIdFilter, JsonFormatter, configure_logging, job_context, make_formatter


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("worker"))
    handler.addFilter(JobIdFilter())
    logger = logging.getLogger("atelier.test.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_inside_a_job_carry_its_id_and_lines_outside_do_not(capture):
    logger, stream = capture
    logger.info("before")
    with job_context("job-123"):
        logger.info("working on %s", "it", extra={"event": "job_started", "iteration": 3})
    logger.info("after")
    before, during, after = lines(stream)
    assert before["job_id"] is None and after["job_id"] is None
    assert during["job_id"] == "job-123"
    assert during["message"] == "working on it"
    assert during["service"] == "worker" and during["level"] == "INFO"
    assert during["event"] == "job_started" and during["iteration"] == 3  # extra= fields are kept
    assert during["ts"].endswith("Z")


def test_exceptions_are_one_json_line_with_the_traceback(capture):
    logger, stream = capture
    with job_context("job-9"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    (entry,) = lines(stream)
    assert entry["job_id"] == "job-9"
    assert "RuntimeError: boom" in entry["exc_info"]


def test_threads_do_not_see_each_others_job_id(capture):
    logger, stream = capture
    barrier = threading.Barrier(2)

    def handle(job_id: str) -> None:
        with job_context(job_id):
            barrier.wait()  # both ids bound at the same time
            logger.info("handling")

    threads = [threading.Thread(target=handle, args=(job_id,)) for job_id in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(entry["job_id"] for entry in lines(stream)) == ["a", "b"]
    assert JOB_ID.get() is None


def test_configure_logging_is_idempotent_and_text_format_names_the_job(capsys):
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure_logging("api", "json")
        handler = configure_logging("api", "text")
        ours = [h for h in root.handlers if getattr(h, "_atelier_handler", False)]
        assert ours == [handler]
        with job_context("job-7"):
            logging.getLogger("atelier.test").warning("hello")
        assert "[job job-7] hello" in capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved


def test_an_unknown_format_is_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match="json or text"):
        make_formatter("api", "xml")
