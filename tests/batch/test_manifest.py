"""The resume manifest: atomic writes, fingerprint checks, done detection."""

from __future__ import annotations

import json
import os

import pytest

from services.manifest import MANIFEST_NAME, SUBMITTED, SUCCEEDED, Manifest, ManifestError, fingerprint


def test_new_manifest_is_saved_atomically_and_reopened(tmp_path):
    fp = fingerprint(["abc"], {"size": 32})
    manifest = Manifest.open(tmp_path, fingerprint=fp, api_url="http://api")
    assert not (tmp_path / MANIFEST_NAME).exists()  # nothing written until there is something to keep
    manifest.set_batch("b1")
    manifest.record("a/x.jpg", job_id="j1", status=SUBMITTED)
    again = Manifest.open(tmp_path, fingerprint=fp, api_url="http://other")
    assert again.batch_id == "b1" and again.job_id("a/x.jpg") == "j1" and again.api_url == "http://api"
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]  # no temporary file left


def test_a_failed_write_keeps_the_previous_manifest(tmp_path, monkeypatch):
    fp = fingerprint(["abc"], {})
    manifest = Manifest.open(tmp_path, fingerprint=fp, api_url="u")
    manifest.set_batch("b1")
    before = (tmp_path / MANIFEST_NAME).read_bytes()

    def broken_replace(src, dst):
        raise KeyboardInterrupt  # Ctrl-C at the worst moment

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(KeyboardInterrupt):
        manifest.record("x.png", job_id="j", status=SUBMITTED)
    monkeypatch.undo()
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]


def test_other_styles_or_params_are_refused(tmp_path):
    Manifest.open(tmp_path, fingerprint=fingerprint(["abc"], {"size": 32}), api_url="u").set_batch("b1")
    with pytest.raises(ManifestError, match="other style images or parameters"):
        Manifest.open(tmp_path, fingerprint=fingerprint(["abc"], {"size": 64}), api_url="u")
    with pytest.raises(ManifestError, match="other style"):
        Manifest.open(tmp_path, fingerprint=fingerprint(["abd"], {"size": 32}), api_url="u")
    (tmp_path / MANIFEST_NAME).write_text("{broken")
    with pytest.raises(ManifestError, match="cannot read"):
        Manifest.open(tmp_path, fingerprint="x", api_url="u")
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"version": 99}))
    with pytest.raises(ManifestError, match="version"):
        Manifest.open(tmp_path, fingerprint="x", api_url="u")


def test_done_needs_success_and_the_output_file(tmp_path):
    manifest = Manifest.open(tmp_path, fingerprint="f", api_url="u")
    output = tmp_path / "a" / "x.png"
    manifest.record("a/x.jpg", job_id="j", status=SUCCEEDED)
    assert not manifest.is_done("a/x.jpg", output)  # the user deleted the output: do it again
    output.parent.mkdir()
    output.write_bytes(b"png")
    assert manifest.is_done("a/x.jpg", output)
    manifest.record("b.jpg", job_id="k", status=SUBMITTED)
    assert not manifest.is_done("b.jpg", output)
