"""The resume manifest of ``atelier batch``: what was submitted and what finished, kept in OUTPUT_DIR.

``OUTPUT_DIR/.atelier-batch.json`` records the batch id (written right after the batch is created, before any item
is added), a fingerprint of the style set and parameters, and per source name its job id, status, output file and
error. Every change is written atomically (a temporary file in the same folder, flushed, then renamed over the old
one), so a Ctrl-C or a crash leaves either the previous or the new manifest, never half of one.

Between "the API accepted an item" and "the manifest recorded its job id" there is a gap that no local write can
close; the API closes it instead: item names are unique in a batch and adding a known name returns its existing job,
and a resumed run first asks the API for the batch's items by name. So nothing is ever submitted twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.atomic import write_atomically

MANIFEST_NAME = ".atelier-batch.json"
VERSION = 1

SUBMITTED = "submitted"  # the API has a job for it (queued, running, or finished but not downloaded yet)
SUCCEEDED = "succeeded"  # the result is in OUTPUT_DIR
FAILED = "failed"  # the job failed or was canceled
REJECTED = "rejected"  # the API refused the image (corrupt, too large, ...); nothing was created for it


class ManifestError(Exception):
    """The manifest cannot be used: unreadable, another version, or made for other styles or parameters."""


def fingerprint(style_digests: Iterable[str], params: Mapping[str, Any]) -> str:
    """What makes two runs "the same batch": the style images (by sha256, in order) and the parameters sent."""
    text = json.dumps({"styles": list(style_digests), "params": dict(params)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    path: Path
    fingerprint: str
    api_url: str
    batch_id: str | None = None
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, output_dir: str | os.PathLike[str], *, fingerprint: str, api_url: str) -> Manifest:
        """The manifest in ``output_dir``, or a new (unsaved) one. ``ManifestError`` if the one there was made
        for other styles or parameters: its outputs would be mixed with the new ones."""
        path = Path(output_dir) / MANIFEST_NAME
        if not path.exists():
            return cls(path, fingerprint, api_url)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ManifestError(f"cannot read {path}: {exc}; remove it to start over") from None
        if data.get("version") != VERSION:
            raise ManifestError(f"{path} has version {data.get('version')!r}, expected {VERSION}; remove it to start "
                                "over")
        if data.get("fingerprint") != fingerprint:
            raise ManifestError(f"{path} belongs to a batch with other style images or parameters; use another "
                                "output folder (or remove the manifest to start over)")
        return cls(path, fingerprint, data.get("api_url") or api_url, data.get("batch_id"),
                   dict(data.get("items") or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "fingerprint": self.fingerprint, "api_url": self.api_url,
                "batch_id": self.batch_id, "items": self.items}

    def save(self) -> None:
        data = json.dumps(self.to_dict(), indent=1, sort_keys=True).encode()
        write_atomically(self.path, data, durable=True)

    # --- items ---------------------------------------------------------------------------------------------------

    def set_batch(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.save()

    def record(self, name: str, *, save: bool = True, **fields: Any) -> dict[str, Any]:
        entry = self.items.setdefault(name, {})
        entry.update(fields)
        if save:
            self.save()
        return entry

    def job_id(self, name: str) -> str | None:
        return (self.items.get(name) or {}).get("job_id")

    def status(self, name: str) -> str | None:
        return (self.items.get(name) or {}).get("status")

    def is_done(self, name: str, output_path: Path) -> bool:
        """Finished earlier: recorded as succeeded and its output file is still there."""
        return self.status(name) == SUCCEEDED and output_path.is_file()
