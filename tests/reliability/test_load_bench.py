"""bench/load.py runs end to end (its own Redis and gunicorn, auth on) and reports what it measured."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # starts Redis and gunicorn, then loads them


def test_load_bench_reports_throughput_latency_and_errors(capsys):
    path = Path(__file__).resolve().parents[2] / "bench" / "load.py"
    spec = importlib.util.spec_from_file_location("atelier_bench_load", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--duration-s", "2", "--threads", "3", "--submit-fraction", "0.3"])
    assert report["errors"] == 0, report["errors_by_kind"]
    assert report["submit"]["requests"] > 0 and report["poll"]["requests"] > 0
    assert report["requests"] == report["submit"]["requests"] + report["poll"]["requests"]
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    assert '"throughput_rps"' in capsys.readouterr().out
