"""Bad input to `atelier stylize` exits non-zero with ONE line that names the problem, no traceback, and leaves
nothing behind. These fail before TensorFlow is imported, so they are fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import run_atelier


def assert_one_line_error(result, *fragments: str) -> None:  # noqa: ANN001 - CompletedProcess
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_missing_content_file(tmp_path: Path, style_path: Path) -> None:
    out = tmp_path / "sub" / "out.png"
    result = run_atelier("stylize", tmp_path / "nope.jpg", style_path, "-o", out)
    assert_one_line_error(result, "nope.jpg", "does not exist")
    assert not out.parent.exists()


def test_an_init_image_that_is_not_an_image_or_comes_with_a_style_model(tmp_path: Path, content_path: Path,
                                                                          style_path: Path) -> None:
    text = tmp_path / "start.png"
    text.write_text("not a picture\n")
    out = tmp_path / "sub" / "out.png"
    result = run_atelier("stylize", content_path, style_path, "-o", out, "--init-image", text)
    assert_one_line_error(result, "init image", "start.png", "not a recognised image")
    result = run_atelier("stylize", content_path, "-o", out, "--init-image", content_path,
                         "--style-model", "0" * 32)
    assert_one_line_error(result, "--init-image and --style-model")
    assert not out.parent.exists()


def test_style_that_is_not_an_image(tmp_path: Path, content_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n")
    out = tmp_path / "sub" / "out.png"
    result = run_atelier("stylize", content_path, text, "-o", out)
    assert_one_line_error(result, "style image", "notes.jpg", "not a recognised image", "JPEG")
    assert not out.parent.exists()


def test_unknown_backbone_lists_the_choices(tmp_path: Path, content_path: Path, style_path: Path) -> None:
    result = run_atelier("stylize", content_path, style_path, "-o", tmp_path / "out.png", "--backbone", "resnet50")
    assert_one_line_error(result, "resnet50", "vgg19", "xception", "efficientnetb7")


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--size", "8", "size=8 is not allowed; expected an integer from 16 to 4096"),
    ("--iterations", "0", "iterations=0"),
    ("--style-weight", "-1", "style_weight=-1.0"),
    ("--size", "big", "'big' is not a valid integer"),
])
def test_value_out_of_range(tmp_path: Path, content_path: Path, style_path: Path, flag: str, value: str,
                            expected: str) -> None:
    result = run_atelier("stylize", content_path, style_path, "-o", tmp_path / "out.png", flag, value)
    assert_one_line_error(result, expected)
    assert not (tmp_path / "out.png").exists()


def test_env_twin_out_of_range(tmp_path: Path, content_path: Path, style_path: Path) -> None:
    result = run_atelier("stylize", content_path, style_path, "-o", tmp_path / "out.png", env={"ATELIER_SIZE": "99999"})
    assert_one_line_error(result, "size=99999", "16 to 4096")


def test_style_blend_must_match_the_style_count(tmp_path: Path, content_path: Path, style_path: Path) -> None:
    result = run_atelier("stylize", content_path, style_path, "-o", tmp_path / "out.png", "--style-blend", "1,2,3")
    assert_one_line_error(result, "style_blend has 3 weights for 1 style images")


def test_missing_style_argument(tmp_path: Path, content_path: Path) -> None:
    result = run_atelier("stylize", content_path, "-o", tmp_path / "out.png")
    assert_one_line_error(result, "STYLES")


def test_unsupported_output_extension(tmp_path: Path, content_path: Path, style_path: Path) -> None:
    result = run_atelier("stylize", content_path, style_path, "-o", tmp_path / "out.gif")
    assert_one_line_error(result, "out.gif", ".png")
