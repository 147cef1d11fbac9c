"""Style targets: the blended Gram matrices of the style images, computed once and reusable across jobs.

A batch that styles many contents with the same styles computes them once (``compute_style_targets``) and passes
them to every ``stylize`` call; a worker may cache their bytes. The ``key`` records everything the Grams depend on
(backbone, pooling, precision, style layers, output size, style scale, blend weights and how they mix
(``style_mix``: averaged Grams or the Wasserstein barycenter's Gram), colour mode, and for colour modes that adapt
the style to the content, a digest of the content), so targets are only reused where they are valid.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import numpy as np

from shared.params import StyleParams


@dataclass(frozen=True)
class StyleTargets:
    key: str  # JSON text of what the targets depend on
    grams: tuple[np.ndarray, ...]  # one float32 (C, C) blended Gram per style layer, in style-layer order

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            key=np.frombuffer(self.key.encode(), dtype=np.uint8),
            **{f"gram_{i}": gram for i, gram in enumerate(self.grams)},
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> StyleTargets:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            key = archive["key"].tobytes().decode()
            count = sum(1 for name in archive.files if name.startswith("gram_"))
            grams = tuple(archive[f"gram_{i}"].astype(np.float32) for i in range(count))
        return cls(key, grams)


def targets_key(
    params: StyleParams,
    precision: str,
    style_layers: tuple[tuple[str, float], ...],
    styles: list[np.ndarray],
    content: np.ndarray | None,
) -> str:
    digest = hashlib.sha256()
    for style in styles:
        digest.update(str(style.shape).encode())
        digest.update(np.ascontiguousarray(style).tobytes())
    content_digest = None
    if params.preserve_color != "none" and content is not None:
        content_digest = hashlib.sha256(np.ascontiguousarray(content).tobytes()).hexdigest()
    return json.dumps(
        {
            "backbone": params.backbone,
            "pooling": params.pooling if params.backbone == "vgg19" else "max",
            "precision": precision,
            "style_layers": [name for name, _weight in style_layers],
            "size": params.size,
            "style_scale": params.style_scale,
            "style_blend": list(params.blend_weights(len(styles))),
            "style_mix": params.style_mix,
            "preserve_color": params.preserve_color,
            "styles": digest.hexdigest(),
            "content": content_digest,
        },
        sort_keys=True,
    )
