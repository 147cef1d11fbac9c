"""The built-in training set (data/training/) and its loader, services/training_set.py.

The folder holds 32 to 64 photos, each listed with its source and licence in sources.json and SOURCES.md (and
nothing listed is missing), each an RGB JPEG whose long side is 384 px, none a copy of a picture in examples/ (the
demo and test pictures: not byte- or pixel-identical, and not the same photo at another size). The loader finds the
folder from any working directory and returns the photos as uint8 arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.training_set import builtin_training_dir, builtin_training_images, builtin_training_paths

REPO = Path(__file__).resolve().parents[2]
TRAINING = REPO / "data" / "training"
EXAMPLES = REPO / "examples"
LONG_SIDE_PX = 384


@pytest.fixture(scope="module")
def sources() -> dict:
    return json.loads((TRAINING / "sources.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(TRAINING.glob("*.jpg"))}


def _thumbnail(data: bytes) -> np.ndarray:
    """A 32x32 grey thumbnail in [0, 255]: the same photo at another size or JPEG quality gives nearly the same."""
    image = Image.open(io.BytesIO(data)).convert("L").resize((32, 32), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float64)


def _aspect(data: bytes) -> float:
    width, height = Image.open(io.BytesIO(data)).size
    return width / height


def _same_photo(a: bytes, b: bytes) -> bool:
    return abs(_aspect(a) / _aspect(b) - 1) < 0.02 and float(np.abs(_thumbnail(a) - _thumbnail(b)).mean()) < 8.0


def _example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def test_between_32_and_64_photos_under_4_mb(photos):
    assert 32 <= len(photos) <= 64
    assert sum(len(data) for data in photos.values()) < 4 * 1024 * 1024
    assert not [p.name for p in TRAINING.iterdir() if p.suffix not in (".jpg", ".json", ".md")]


def test_every_photo_is_listed_with_a_licence_and_every_listed_one_exists(sources, photos):
    listed = {record["file"]: record for record in sources["images"]}
    assert sorted(listed) == sorted(photos)
    markdown = (TRAINING / "SOURCES.md").read_text(encoding="utf-8")
    for name, record in listed.items():
        for key in ("package", "version", "member", "licence", "licence_name", "licence_stated_in", "title"):
            assert str(record.get(key, "")).strip(), f"{name}: no {key}"
        assert record["package_kind"] in ("pypi", "debian")
        assert record["sha256"] == hashlib.sha256(photos[name]).hexdigest(), f"{name} differs from sources.json"
        row = next((line for line in markdown.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"{name} has no row in SOURCES.md"
        assert record["licence"] in row and record["package"] in row and record["member"] in row


def test_each_photo_is_rgb_with_long_side_384(sources, photos):
    sizes = {record["file"]: (record["width"], record["height"]) for record in sources["images"]}
    for name, data in photos.items():
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.mode == "RGB", name
            assert max(image.size) == LONG_SIDE_PX, (name, image.size)
            assert image.size == sizes[name]
            image.load()


def test_no_photo_is_a_copy_of_an_example_picture(photos):
    examples = _example_files()
    assert examples, "examples/ has no pictures to compare with"
    for example in examples:
        example_bytes = example.read_bytes()
        example_pixels = np.asarray(Image.open(example).convert("RGB"))
        for name, data in photos.items():
            assert data != example_bytes, f"{name} is byte-identical to {example}"
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            assert not (pixels.shape == example_pixels.shape and np.array_equal(pixels, example_pixels)), (
                f"{name} is pixel-identical to {example}"
            )
            assert not _same_photo(data, example_bytes), f"{name} is the same photo as {example}"


def test_the_same_photo_check_catches_a_resized_copy_and_passes_different_photos(photos):
    example = EXAMPLES / "content" / "chelsea_cat.jpg"
    image = Image.open(example).convert("RGB")
    image = image.resize((LONG_SIDE_PX, round(image.height * LONG_SIDE_PX / image.width)), Image.Resampling.LANCZOS)
    copy = io.BytesIO()
    image.save(copy, format="JPEG", quality=90)
    assert _same_photo(copy.getvalue(), example.read_bytes())
    names = sorted(photos)
    assert not _same_photo(photos[names[0]], photos[names[1]])


def test_loader_returns_the_photos_as_uint8_rgb_arrays(photos):
    images = builtin_training_images()
    assert [p.name for p in builtin_training_paths()] == sorted(photos)
    assert len(images) == len(photos)
    for array, (name, data) in zip(images, sorted(photos.items()), strict=True):
        assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3, name
        assert np.array_equal(array, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))), name
        assert array.flags.writeable


def test_loader_caps_the_long_side_and_never_enlarges():
    small = builtin_training_images(max_side_px=64)
    assert small and all(max(a.shape[:2]) == 64 for a in small)
    full = builtin_training_images(max_side_px=1024)
    assert all(max(a.shape[:2]) == LONG_SIDE_PX for a in full)
    for a, b in zip(small, full, strict=True):
        assert abs(a.shape[1] / a.shape[0] - b.shape[1] / b.shape[0]) < 0.05
    with pytest.raises(ValueError, match="max_side_px"):
        builtin_training_images(max_side_px=0)


def test_the_folder_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert builtin_training_dir() == TRAINING
    assert len(builtin_training_paths()) == len(list(TRAINING.glob("*.jpg")))
