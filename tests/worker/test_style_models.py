"""Style models on the worker: only files this service signed load, the signing key is one per deployment, and a
job that names a model whose file was replaced fails with the engine's refusal code (never internal_error)."""

from __future__ import annotations

import hashlib

import pytest

from shared.errors import EngineError
from shared.jobs import JobRecord, input_key, model_key, new_job_id, new_job_record
from worker.runner import JobRunner, WorkerIdentity
from worker.style_models import StyleModelCache, signing_key

from .conftest import png_bytes

pytestmark = pytest.mark.slow  # builds a (tiny) Keras network


def _model_bytes(key: bytes) -> bytes:
    from worker.engine import feedforward

    model = feedforward.FastStyleModel.new(width=0.125, residual_blocks=1, seed=3)
    return feedforward.model_to_bytes(model, key=key)


def test_the_signing_key_is_the_setting_or_one_random_key_for_every_worker(settings, registry):
    assert signing_key(settings.replace(model_signing_key="configured"), registry.redis) == b"configured"
    first, second = signing_key(settings, registry.redis), signing_key(settings, registry.redis)
    assert first == second and len(first) == 64  # made once (SET NX), shared through Redis


def test_only_models_signed_with_the_deployment_key_load(storage):
    storage.put("models/m/model.atls", _model_bytes(b"ours"), content_type="application/octet-stream")
    assert StyleModelCache(storage, lambda: b"ours").load("models/m/model.atls").width == 0.125
    with pytest.raises(EngineError) as refused:
        StyleModelCache(storage, lambda: b"someone else's").load("models/m/model.atls")
    assert refused.value.code == "model_signature"


def test_a_job_whose_model_file_is_foreign_fails_with_the_refusal_code(registry, storage, settings):
    trained = JobRecord(id=new_job_id(), kind="train_style", status="succeeded", queue="bulk",
                        result={"key": model_key("x")})
    registry.create(trained)
    storage.put(model_key(trained.id), b"PK\x03\x04 a zip that claims to be a model", content_type="x")
    content = png_bytes(40, 20)
    key = input_key(hashlib.sha256(content).hexdigest(), "PNG")
    storage.put(key, content, content_type="image/png")
    job_id = new_job_id()
    registry.create(new_job_record(job_id, params={"size": 32, "style_model": trained.id}, content_key=key,
                                   style_keys=[], content_name="c.png", style_names=[], queue="interactive",
                                   style_model_key=model_key(trained.id)))
    runner = JobRunner(registry, storage, settings, WorkerIdentity("h", 1),
                       style_models=StyleModelCache(storage, lambda: b"ours"))
    assert runner.run(job_id) == "failed"
    assert registry.get(job_id).error["code"] == "model_format_unknown"
