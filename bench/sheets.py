"""Result sheets for the docs: content | style | result, for each sample pair at 256 and 512 px, engine defaults.

    python bench/sheets.py [--sizes 256,512] [--out docs/sheets] [--iterations N]

Each sheet is what ``atelier stylize CONTENT STYLE -o result.png --size S`` produces with every other parameter at
its default (the command is printed for each sheet), laid out next to its inputs so a reader can judge whether the
content stays recognisable and the style is evident. Sheets are JPEG (quality 85) to keep the docs small; the
metrics of every run go to ``<out>/sheets.json`` and a Markdown table is printed for ``docs/engine.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The shared developer images hold all three pairs; the repo's examples/ has copies of some of them.
IMAGE_DIRS = (ROOT.parent / "shared" / "data" / "images", ROOT / "examples")
PAIRS = (  # content, style: each photograph with the painting that suits it best
    ("chelsea_cat.jpg", "vangogh_starry_night.jpg"),
    ("astronaut_portrait.jpg", "munch_the_scream.jpg"),
    ("columns_architecture.jpg", "kandinsky_composition_vii.jpg"),
)
CAPTION_PX = 18
GAP_PX = 6
JPEG_QUALITY = 85


def find_image(kind: str, name: str, directories: tuple[Path, ...] = IMAGE_DIRS) -> Path | None:
    for directory in directories:
        if (directory / kind / name).is_file():
            return directory / kind / name
    return None


def fit_height(image: Any, height_px: int) -> Any:
    from PIL import Image

    width_px = max(1, round(image.width * height_px / image.height))
    return image.resize((width_px, height_px), Image.Resampling.LANCZOS)


def compose_sheet(panels: list[tuple[Any, str]], height_px: int) -> Any:
    """Panels side by side at one height, each with a caption strip above it."""
    from PIL import Image, ImageDraw

    fitted = [(fit_height(image, height_px), caption) for image, caption in panels]
    width_px = sum(image.width for image, _ in fitted) + GAP_PX * (len(fitted) - 1)
    sheet = Image.new("RGB", (width_px, height_px + CAPTION_PX), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for image, caption in fitted:
        draw.text((x + 4, 3), caption, fill=(30, 30, 30))
        sheet.paste(image, (x, CAPTION_PX))
        x += image.width + GAP_PX
    return sheet


def command_line(content: Path, style: Path, size_px: int, iterations: int | None) -> str:
    extra = f" --iterations {iterations}" if iterations else ""
    return (f"atelier stylize {content.name} {style.name} -o {content.stem}__{style.stem}_{size_px}.png "
            f"--size {size_px}{extra}")


def merge_records(path: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the records of sheets made by earlier runs (e.g. 256 px one day, 512 px the next), replacing those
    this run remade; writes and returns them sorted by pair and size."""
    old = json.loads(path.read_text()) if path.is_file() else []
    by_sheet = {record["sheet"]: record for record in old if (path.parent / record["sheet"]).is_file()}
    by_sheet.update({record["sheet"]: record for record in new})
    order = {pair: index for index, pair in enumerate(PAIRS)}
    records = sorted(by_sheet.values(),
                     key=lambda r: (order.get((r["content"], r["style"]), len(order)), r["size"]))
    path.write_text(json.dumps(records, indent=2) + "\n")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="content | style | result sheets for docs/engine.md")
    parser.add_argument("--sizes", default="256,512", help="comma-separated long sides in pixels")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "sheets")
    parser.add_argument("--iterations", type=int, default=None, help="override the default iteration count")
    parser.add_argument("--pairs", default=None,
                        help="comma-separated pair numbers, 1-based (default: all): " +
                        "; ".join(f"{n}: {c} x {s}" for n, (c, s) in enumerate(PAIRS, start=1)))
    args = parser.parse_args(argv)
    pairs = [PAIRS[int(n) - 1] for n in args.pairs.split(",")] if args.pairs else list(PAIRS)
    sizes = [int(size) for size in args.sizes.split(",")]

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PIL import Image

    from shared.images import load_rgb
    from shared.params import StyleParams
    from worker.engine import stylize

    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for content_name, style_name in pairs:
        content, style = find_image("content", content_name), find_image("style", style_name)
        if content is None or style is None:
            print(f"skipping {content_name} x {style_name}: not found in {IMAGE_DIRS}", file=sys.stderr)
            continue
        content_rgb = load_rgb(content.read_bytes(), field=content_name)
        style_rgb = load_rgb(style.read_bytes(), field=style_name)
        for size_px in sizes:
            values: dict[str, Any] = {"size": size_px}
            if args.iterations:
                values["iterations"] = args.iterations
            params = StyleParams.from_mapping(values)
            result = stylize(content_rgb, [style_rgb], params)
            metrics = result.metrics
            # No seconds in the caption: timings on a shared machine say nothing about the engine; see sheets.json.
            caption = f"result: {metrics['backbone']}, {params.iterations} it, {metrics['precision']}"
            sheet = compose_sheet([(Image.fromarray(content_rgb), f"content: {content_name}"),
                                   (Image.fromarray(style_rgb), f"style: {style_name}"),
                                   (Image.fromarray(result.image), caption)], height_px=result.image.shape[0])
            path = args.out / f"{content.stem}__{style.stem}_{size_px}.jpg"
            sheet.save(path, quality=JPEG_QUALITY, optimize=True)
            record = {"sheet": path.name, "content": content_name, "style": style_name, "size": size_px,
                      "command": command_line(content, style, size_px, args.iterations), "metrics": metrics}
            records.append(record)
            print(f"{path} ({path.stat().st_size // 1024} KiB): {metrics['seconds']:.1f} s, "
                  f"{metrics['seconds_per_iteration']:.3f} s/it, TV {metrics['total_variation']:.4g}",
                  file=sys.stderr, flush=True)
    records = merge_records(args.out / "sheets.json", records)
    print("| sheet | size px | iterations | precision | s | s/it | total variation | content loss | style loss |")
    print("|---|---|---|---|---|---|---|---|---|")
    for record in records:
        m = record["metrics"]
        print(f"| [{record['content']} x {record['style']}](sheets/{record['sheet']}) | "
              f"{m['size_px'][0]}x{m['size_px'][1]} | {m['iterations_run']} | {m['precision']} | {m['seconds']:.1f} | "
              f"{m['seconds_per_iteration']:.3f} | {m['total_variation']:.4g} | "
              f"{m['losses']['final']['content']:.4g} | {m['losses']['final']['style']:.4g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
