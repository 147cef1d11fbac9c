"""Settings from ATELIER_* variables: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError


def test_defaults():
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.storage == "file://" + str(Path("var/storage").resolve())
    assert settings.max_upload_bytes == 20 * 1024 * 1024 and settings.max_image_pixels == 40_000_000
    assert settings.job_time_limit_s == 3600 and settings.train_time_limit_s == 6 * 3600
    assert settings.visibility_timeout_s == 2 * 6 * 3600 + 600  # the longer of the two limits
    assert settings.max_deliveries == 3 and settings.presign_ttl_s == 300
    assert settings.progress_min_interval_s == 0.5 and settings.preview_every == 50
    assert settings.s3_endpoint_url is None and settings.weights_dir is None


def test_every_variable_is_read():
    env = {
        "ATELIER_REDIS_URL": "redis://redis:6379/2",
        "ATELIER_STORAGE": "s3://atelier",
        "ATELIER_S3_ENDPOINT_URL": "http://minio:9000",
        "ATELIER_MAX_UPLOAD_BYTES": "1000",
        "ATELIER_MAX_IMAGE_PIXELS": "2000",
        "ATELIER_JOB_TIME_LIMIT_S": "60",
        "ATELIER_TRAIN_TIME_LIMIT_S": "120",
        "ATELIER_VISIBILITY_TIMEOUT_S": "500",
        "ATELIER_MAX_DELIVERIES": "5",
        "ATELIER_MODEL_SIGNING_KEY": "s3cret",
        "ATELIER_PRESIGN_TTL_S": "30",
        "ATELIER_PROGRESS_MIN_INTERVAL_S": "0.25",
        "ATELIER_PREVIEW_EVERY": "0",
        "ATELIER_WEIGHTS_DIR": "/weights",
        "UNRELATED": "ignored",
    }
    settings = Settings.from_env(env)
    assert settings == Settings(
        redis_url="redis://redis:6379/2", storage="s3://atelier", s3_endpoint_url="http://minio:9000",
        max_upload_bytes=1000, max_image_pixels=2000, job_time_limit_s=60, train_time_limit_s=120,
        visibility_timeout_s=500, model_signing_key="s3cret", max_deliveries=5, presign_ttl_s=30,
        progress_min_interval_s=0.25, preview_every=0, weights_dir="/weights",
    )
    assert settings.storage_is_s3


def test_visibility_timeout_follows_the_time_limit():
    limits = {"ATELIER_JOB_TIME_LIMIT_S": "100", "ATELIER_TRAIN_TIME_LIMIT_S": "50"}
    assert Settings.from_env(limits).visibility_timeout_s == 800
    assert Settings.from_env({**limits, "ATELIER_TRAIN_TIME_LIMIT_S": "400"}).visibility_timeout_s == 1400


@pytest.mark.parametrize(("env", "variable"), [
    ({"ATELIER_MAX_UPLOAD_BYTES": "lots"}, "ATELIER_MAX_UPLOAD_BYTES"),
    ({"ATELIER_MAX_DELIVERIES": "0"}, "ATELIER_MAX_DELIVERIES"),
    ({"ATELIER_PROGRESS_MIN_INTERVAL_S": "-1"}, "ATELIER_PROGRESS_MIN_INTERVAL_S"),
    ({"ATELIER_STORAGE": "var/storage"}, "ATELIER_STORAGE"),
    ({"ATELIER_STORAGE": "s3://"}, "ATELIER_STORAGE"),
    ({"ATELIER_STORAGE": "ftp://host"}, "ATELIER_STORAGE"),
    ({"ATELIER_REDIS_URL": "localhost:6379"}, "ATELIER_REDIS_URL"),
    ({"ATELIER_JOB_TIME_LIMIT_S": "100", "ATELIER_VISIBILITY_TIMEOUT_S": "50"}, "ATELIER_VISIBILITY_TIMEOUT_S"),
])
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert info.value.field == variable and variable in info.value.message


def test_empty_values_keep_defaults():
    assert Settings.from_env({"ATELIER_S3_ENDPOINT_URL": "", "ATELIER_MAX_DELIVERIES": " "}) == Settings()
