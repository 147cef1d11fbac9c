"""Build ``data/training/``: the built-in photo set for training fast-style networks (issue 11, item 6).

No COCO-like photo set exists on this machine, so the set is assembled from photographs that ship *inside*
packages of PyPI and Debian, each with a licence that the package itself states. This script never downloads:
it reads the package archives you give it (wheels and .deb files, or folders holding them), checks that each
chosen photo's licence statement is still what we recorded, converts it to sRGB, resizes it so the long side is
384 px, writes it as JPEG quality 90 under a stable name, and writes ``sources.json`` (machine-readable, read by
the tests) and ``SOURCES.md`` (for people) beside the photos.

Why in ``bench/``: it is an offline script run from the repository root with the project's virtualenv like the
other scripts there, the fast-style benchmark of issue 11 (``bench/fast.py``) is to train on its output, and
``make lint`` already checks ``bench/``.

Reproduce, from the repository root (the pins are the ones the committed set was built from)::

    # PyPI: the wheels are only read as zip archives, never installed (so no dependencies are needed).
    .venv/bin/pip download --no-deps --only-binary=:all: -d /tmp/tssrc scikit-image==0.26.0 scikit-learn==1.9.1
    # Debian (bookworm): the .deb files are only read, never installed.
    apt-get update && (cd /tmp/tssrc && apt-get download plasma-workspace-wallpapers=4:5.27.5-2 \\
        mate-backgrounds=1.26.0-1 lomiri-wallpapers-16.04=20.04.0-2 lomiri-wallpapers-20.04=20.04.0-2)
    .venv/bin/python bench/make_training_set.py /tmp/tssrc

The wheel's platform tag does not matter (the image files are the same in every wheel of a release). Built with
Pillow 13.0.0 (the project's pin); another Pillow or libjpeg may encode slightly different bytes.

Options: ``--out DIR`` (default ``data/training``), ``--examples DIR`` (default ``examples``; output that is
byte- or pixel-identical to one of those is an error), ``--any-version`` (accept package versions other than the
pinned ones; the licence checks still run). Exit status 0 when the set was written.

What is left out, and why, is in ``EXCLUDED`` below and in the generated ``SOURCES.md``.
"""

from __future__ import annotations

import argparse
import ast
import email.parser
import fnmatch
import hashlib
import io
import json
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageCms, ImageOps

LONG_SIDE_PX = 384
JPEG_QUALITY = 90
MAX_TOTAL_BYTES = 4 * 1024 * 1024

PINNED_VERSIONS = {
    "scikit-image": "0.26.0",
    "scikit-learn": "1.9.1",
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "mate-backgrounds": "1.26.0-1",
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
}

LICENCE_NAMES = {
    "CC0-1.0": "Creative Commons CC0 1.0 Universal",
    "public-domain": "Public domain",
    "CC-BY-2.0": "Creative Commons Attribution 2.0 Generic",
    "CC-BY-4.0": "Creative Commons Attribution 4.0 International",
    "CC-BY-SA-3.0": "Creative Commons Attribution-ShareAlike 3.0 Unported",
    "CC-BY-SA-4.0": "Creative Commons Attribution-ShareAlike 4.0 International",
    "GPL-2.0-or-later": "GNU General Public License, version 2 or any later version",
    "LGPL-3.0": "GNU Lesser General Public License, version 3",
}

# Debian copyright files (DEP-5) and KDE metadata spell licences their own way.
_DEP5_TO_SPDX = {
    "GPL-2+": "GPL-2.0-or-later",
    "CC-BY-SA-3.0": "CC-BY-SA-3.0",
    "CC-BY-SA-4.0": "CC-BY-SA-4.0",
    "CC-BY-4.0": "CC-BY-4.0",
    "CC0-1.0": "CC0-1.0",
    "LGPLv3": "LGPL-3.0",
}


@dataclass(frozen=True)
class Pick:
    """One photo to take: where it is, and how the package states its licence.

    ``kind`` says how the statement is checked:

    - ``docstring``: ``evidence`` appears in the docstring of function ``where`` of the Python file ``stated_in``;
    - ``readme``: ``evidence`` appears in the paragraph of text file ``stated_in`` that starts ``where``;
    - ``dep5``: the Debian copyright file's stanza for upstream path ``where`` gives licence ``licence``;
    - ``kde``: the wallpaper's ``metadata.json`` (or ``metadata.desktop``) gives ``licence``, and the Debian
      copyright file is read too (its ``Files: *`` licence is recorded beside it).
    """

    name: str
    package: str
    member: str
    licence: str
    kind: str
    where: str
    title: str
    author: str = ""
    evidence: str = ""
    stated_in: str = ""
    note: str = ""


def _sk(stem: str, member: str, function: str, title: str, author: str, licence: str, evidence: str,
        note: str = "") -> Pick:
    return Pick(f"skimage_{stem}", "scikit-image", member, licence, "docstring", function, title, author, evidence,
                "skimage/data/_fetchers.py", note)


def _mate(stem: str, file: str, title: str) -> Pick:
    return Pick(f"mate_{stem}", "mate-backgrounds", f"usr/share/backgrounds/mate/nature/{file}", "GPL-2.0-or-later",
                "dep5", f"nature/{file}", title)


def _kde(stem: str, folder: str, size: str = "2560x1600") -> Pick:
    return Pick(f"plasma_{stem}", "plasma-workspace-wallpapers",
                f"usr/share/wallpapers/{folder}/contents/images/{size}.jpg", "LGPL-3.0", "kde", folder, "")


def _lomiri(stem: str, release: str, file: str, licence: str, title: str) -> Pick:
    return Pick(f"lomiri_{stem}", f"lomiri-wallpapers-{release}", f"usr/share/backgrounds/{file}", licence, "dep5",
                f"{release}/{file}", title)


PICKS: tuple[Pick, ...] = (
    _sk("coffee", "skimage/data/coffee.png", "coffee", "Coffee cup (courtesy of Pikolo Espresso Bar)",
        "Rachel Michetti", "CC0-1.0", "CC0 by the photographer (Rachel Michetti)"),
    _sk("rocket", "skimage/data/rocket.jpg", "rocket", "Launch of DSCOVR on Falcon 9", "SpaceX", "public-domain",
        "released in the public domain"),
    _sk("hubble_deep_field", "skimage/data/hubble_deep_field.jpg", "hubble_deep_field", "Hubble eXtreme Deep Field",
        "NASA", "public-domain", "may be freely used in the public domain",
        "NASA media guidelines: no use that implies NASA's endorsement."),
    _sk("retina", "skimage/data/retina.jpg", "retina", "Fundus photograph of a normal left eye",
        "Mikael Häggström", "CC0-1.0", "Creative Commons CC0 1.0 Universal"),
    Pick("sklearn_china", "scikit-learn", "sklearn/datasets/images/china.jpg", "CC-BY-2.0", "readme",
         "Image: china.jpg", "China (flickr photo 6061409035)", "danielbuechele",
         "creativecommons.org/licenses/by/2.0", "sklearn/datasets/images/README.txt"),
    Pick("sklearn_flower", "scikit-learn", "sklearn/datasets/images/flower.jpg", "CC-BY-2.0", "readme",
         "Image: flower.jpg", "Flower (flickr photo 6056698931)", "vultilion",
         "creativecommons.org/licenses/by/2.0", "sklearn/datasets/images/README.txt",
         "The README's attribution line says 'danielbuechele' but its link is the flickr account 'vultilion', "
         "which is recorded here as the author; both are quoted in licence_statement."),
    _kde("by_the_water", "BytheWater"),
    _kde("cold_ripple", "ColdRipple"),
    _kde("colorful_cups", "ColorfulCups"),
    _kde("darkest_hour", "DarkestHour"),
    _kde("evening_glow", "EveningGlow"),
    _kde("fallen_leaf", "FallenLeaf"),
    _kde("grey", "Grey"),
    _kde("kite", "Kite"),
    _kde("one_stands_out", "OneStandsOut"),
    _kde("path", "Path"),
    _kde("summer_1am", "summer_1am"),
    _mate("aqua", "Aqua.jpg", "Aqua"),
    _mate("blinds", "Blinds.jpg", "Blinds"),
    _mate("dune", "Dune.jpg", "Dune"),
    _mate("fresh_flower", "FreshFlower.jpg", "Fresh Flower"),
    _mate("garden", "Garden.jpg", "Garden"),
    _mate("green_meadow", "GreenMeadow.jpg", "Green Meadow"),
    _mate("lady_bird", "LadyBird.jpg", "Lady Bird"),
    _mate("rain_drops", "RainDrops.jpg", "Rain Drops"),
    _mate("storm", "Storm.jpg", "Storm"),
    _mate("two_wings", "TwoWings.jpg", "Two Wings"),
    _mate("wood", "Wood.jpg", "Wood"),
    _mate("yellow_flower", "YellowFlower.jpg", "Yellow Flower"),
    _lomiri("bridge", "16.04", "Bridge_by_Sander_Klootwijk.jpg", "CC-BY-SA-4.0", "Bridge"),
    _lomiri("dragonfly", "16.04", "Dragonfly_by_Bolly.jpg", "CC-BY-SA-4.0", "Dragonfly"),
    _lomiri("picture_0b", "16.04", "Picture_0B_by_freespace.jpg", "CC-BY-4.0", "Picture 0B"),
    _lomiri("picture_1a", "16.04", "Picture_1A_by_freespace.jpg", "CC-BY-4.0", "Picture 1A"),
    _lomiri("wine", "16.04", "Wine_by_Jakkub_Mede.jpg", "CC-BY-4.0", "Wine"),
    _lomiri("aitzgorri", "16.04", "aitzgorri_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzgorri"),
    _lomiri("free", "16.04", "free_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", "Free"),
    _lomiri("friends", "16.04", "friends_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Friends"),
    _lomiri("greentock", "16.04", "greentock_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", "Greentock"),
    _lomiri("life", "16.04", "life_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Life"),
    _lomiri("picos_de_europa", "16.04", "picosdeeuropa_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Picos de Europa"),
    _lomiri("seeding", "16.04", "seeding_by_Clements_Engelhardt.jpg", "CC0-1.0", "Seeding"),
    _lomiri("sunset", "16.04", "sunset_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Sunset"),
    _lomiri("kleiber", "20.04", "Kleiber_by_Lukas_Baubkus.jpg", "CC-BY-SA-3.0", "Kleiber (nuthatch)"),
)

EXCLUDED: tuple[tuple[str, str], ...] = (
    ("scikit-image `skimage/data/astronaut.png`, `skimage/data/chelsea.png`",
     "the same photographs as `examples/content/` (the demo and test pictures); a training set must not contain "
     "the pictures the results are judged on"),
    ("scikit-image `skimage/data/motorcycle_left.png`, `motorcycle_right.png`",
     "Middlebury 2014 stereo benchmark images; the package states no licence for them"),
    ("matplotlib 3.11.2 `matplotlib/mpl-data/sample_data/grace_hopper.jpg`",
     "the package states no licence or provenance for this photograph (its README and LICENSE do not mention it)"),
    ("scikit-image grey photographs (`camera.png`, `clock_motion.png`, `coins.png`, `moon.png`, `page.png`, ...)",
     "not colour; the colour photos are enough"),
    ("scikit-image `ihc.png`, `cell.png`, textures (`brick`, `grass`, `gravel`), `color.png`, `logo.png`",
     "microscopy, textures or drawings, not photographs of scenes"),
    ("plasma-workspace-wallpapers: Altai, Autumn, Canopee, Cascade, Cluster, Elarun, Flow, FlyingKonqui, "
     "Honeywave, IceCold, Kay, Kokkini, MilkyWay, Opal, PastelHills, Patak, SafeLanding, Shell, Volna",
     "abstract renders or illustrations, not photographs"),
    ("mate-backgrounds `abstract/*`, `desktop/*`", "abstract renders, logos or illustrations, not photographs"),
    ("lomiri-wallpapers-16.04 `analogpattern_by_Peter_Nerlich.jpg`, `umang_by_Abhishek_Mudgal.jpg`; "
     "lomiri-wallpapers-20.04 `Fossa_by_Jasper_Roks.jpg`, `Infinite-Sea_by_Aury88.jpg`, "
     "`Painting-Colors_by__herobrine7gamer.jpg`",
     "abstract patterns, renders or composites, not photographs of scenes"),
    ("gnome-backgrounds 43.1-1, ukui-wallpapers 20.04.3-1.1, lomiri-wallpapers 20.04.0-2 (warty-final-ubuntu.png)",
     "looked at: only abstract renders"),
)


# --- package archives ------------------------------------------------------------------------------------------


@dataclass
class Package:
    """A package archive opened for reading: its name, version, kind and members (path -> bytes on demand)."""

    name: str
    version: str
    kind: str  # "pypi" or "debian"
    archive: Path
    _members: dict[str, bytes] = field(default_factory=dict)
    _zip: zipfile.ZipFile | None = None

    def read(self, member: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(member)
        try:
            return self._members[member]
        except KeyError:
            raise KeyError(f"{member} is not in {self.archive.name}") from None

    def names(self) -> list[str]:
        return self._zip.namelist() if self._zip is not None else list(self._members)


def open_wheel(path: Path) -> Package:
    archive = zipfile.ZipFile(path)
    metadata_name = next(n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
    metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode("utf-8"))
    return Package(metadata["Name"], metadata["Version"], "pypi", path, _zip=archive)


def _ar_members(data: bytes) -> dict[str, bytes]:
    """The members of an ``ar`` archive (the container format of a .deb): 8-byte magic, then 60-byte headers."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    members, offset = {}, 8
    while offset + 60 <= len(data):
        header = data[offset:offset + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        offset += 60
        members[name] = data[offset:offset + size]
        offset += size + (size % 2)
    return members


def _tar_files(blob: bytes) -> dict[str, bytes]:
    files = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        for info in tar:
            if info.isfile():
                extracted = tar.extractfile(info)
                assert extracted is not None
                files[info.name.removeprefix("./")] = extracted.read()
    return files


def open_deb(path: Path) -> Package:
    members = _ar_members(path.read_bytes())
    control_name = next((n for n in members if n.startswith("control.tar")), None)
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if control_name is None or data_name is None or data_name.endswith(".zst") or control_name.endswith(".zst"):
        raise ValueError(f"{path.name}: needs control.tar and data.tar in gz, xz or bz2 (found {sorted(members)})")
    control = _tar_files(members[control_name])["control"].decode("utf-8")
    fields = dict(re.findall(r"^(Package|Version): (.+)$", control, flags=re.MULTILINE))
    return Package(fields["Package"], fields["Version"], "debian", path, _members=_tar_files(members[data_name]))


def find_packages(sources: list[Path]) -> dict[str, Package]:
    wanted = {pick.package for pick in PICKS}
    files: list[Path] = []
    for source in sources:
        files.extend(sorted(source.iterdir()) if source.is_dir() else [source])
    packages: dict[str, Package] = {}
    for path in files:
        if path.suffix == ".whl":
            stem = path.name.split("-")[0].replace("_", "-").lower()
            if stem in wanted:
                packages[stem] = open_wheel(path)
        elif path.suffix == ".deb" and path.name.split("_")[0] in wanted:
            package = open_deb(path)
            packages[package.name] = package
    missing = sorted(wanted - set(packages))
    if missing:
        raise SystemExit(f"missing package archives for: {', '.join(missing)} (see this script's docstring)")
    return packages


# --- licence statements ----------------------------------------------------------------------------------------


def parse_dep5(text: str) -> list[dict[str, str]]:
    """Paragraphs of a machine-readable Debian copyright file: field -> value (continuation lines joined)."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, ""
        elif line[0] in " \t" and last:
            current[last] += "\n" + line.strip()
        elif ":" in line:
            last, value = line.split(":", 1)
            current[last] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def dep5_stanza(copyright_text: str, upstream_path: str) -> dict[str, str]:
    """The ``Files:`` paragraph that governs ``upstream_path``: per DEP-5, the last one whose pattern matches."""
    match = None
    for paragraph in parse_dep5(copyright_text):
        patterns = paragraph.get("Files", "").split()
        if any(fnmatch.fnmatchcase(upstream_path, pattern) for pattern in patterns):
            match = paragraph
    if match is None:
        raise SystemExit(f"no Files: paragraph for {upstream_path} in the Debian copyright file")
    return match


def _docstring(source: str, function: str) -> str:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return ast.get_docstring(node) or ""
    raise SystemExit(f"function {function} not found")


def _readme_paragraph(text: str, start: str) -> str:
    begin = text.index(start)
    following = text.find("\nImage:", begin + 1)
    return text[begin:] if following < 0 else text[begin:following]


def _author_names(copyright_field: str) -> str:
    """Names only from a DEP-5 ``Copyright:`` field: e-mail addresses, years and stray punctuation removed."""
    names = []
    for line in copyright_field.splitlines():
        line = re.sub(r"\s*<[^>]*>", "", line).replace("´", "")
        line = re.sub(r"\b\d{4}(-\d{4})?\b[.,]?", "", line)
        names.append(line.strip(" ,.;"))
    return "; ".join(n for n in names if n)


def licence_record(pick: Pick, package: Package) -> dict[str, str]:
    """Check the package's own statement of the photo's licence; return what SOURCES records about it."""
    author, title = pick.author, pick.title
    if pick.kind == "docstring":
        statement = _docstring(package.read(pick.stated_in).decode("utf-8"), pick.where)
        stated_in = f"{pick.stated_in}, docstring of {pick.where}()"
    elif pick.kind == "readme":
        statement = _readme_paragraph(package.read(pick.stated_in).decode("utf-8"), pick.where)
        stated_in = f"{pick.stated_in}, paragraph '{pick.where}'"
    else:
        copyright_member = f"usr/share/doc/{package.name}/copyright"
        copyright_text = package.read(copyright_member).decode("utf-8")
        if pick.kind == "dep5":
            stanza = dep5_stanza(copyright_text, pick.where)
            found = _DEP5_TO_SPDX.get(stanza["License"].split("\n")[0].strip(), stanza["License"])
            if found != pick.licence:
                raise SystemExit(f"{pick.member}: the package now says {found}, we recorded {pick.licence}")
            author = author or _author_names(stanza["Copyright"])
            statement = f"Files: {pick.where}\nCopyright: {stanza['Copyright']}\nLicense: {stanza['License']}"
            stated_in = f"{copyright_member} (Debian machine-readable copyright file), paragraph 'Files: {pick.where}'"
        else:  # kde
            found, author, title = _kde_metadata(package, pick.where)
            if found != pick.licence:
                raise SystemExit(f"{pick.member}: the wallpaper metadata now says {found}, we recorded {pick.licence}")
            catch_all = dep5_stanza(copyright_text, pick.member)
            statement = (f"KPlugin.License: {found}; the Debian copyright file says, for Files: *, "
                         f"Copyright: {catch_all['Copyright']}, License: {catch_all['License'].split(chr(10))[0]}")
            stated_in = (f"usr/share/wallpapers/{pick.where}/metadata.json (KPlugin.License) and {copyright_member} "
                         "(Files: *)")
        return {"licence": pick.licence, "licence_name": LICENCE_NAMES[pick.licence], "licence_stated_in": stated_in,
                "licence_statement": statement, "author": author, "title": title}
    if pick.evidence not in statement.replace("\n", " "):
        raise SystemExit(f"{pick.member}: '{pick.evidence}' no longer in {stated_in}; check its licence again")
    return {"licence": pick.licence, "licence_name": LICENCE_NAMES[pick.licence], "licence_stated_in": stated_in,
            "licence_statement": " ".join(statement.split()), "author": author, "title": title}


def _kde_metadata(package: Package, folder: str) -> tuple[str, str, str]:
    """(licence, author, title) from a Plasma wallpaper's metadata.json or older metadata.desktop."""
    base = f"usr/share/wallpapers/{folder}"
    if f"{base}/metadata.json" in package.names():
        plugin = json.loads(package.read(f"{base}/metadata.json"))["KPlugin"]
        authors = "; ".join(a.get("Name", "") for a in plugin.get("Authors", []))
        licence, title = plugin["License"], plugin["Name"]
    else:
        desktop = dict(re.findall(r"^([\w-]+)=(.*)$", package.read(f"{base}/metadata.desktop").decode(), re.M))
        licence, authors, title = (desktop["X-KDE-PluginInfo-License"], desktop["X-KDE-PluginInfo-Author"],
                                   desktop["Name"])
    return _DEP5_TO_SPDX.get(licence, licence), authors, title


# --- images ----------------------------------------------------------------------------------------------------


def to_training_jpeg(data: bytes) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """(JPEG bytes, source size, output size): upright, sRGB, RGB, long side LONG_SIDE_PX, no metadata."""
    image = Image.open(io.BytesIO(data))
    source_size = image.size
    image = ImageOps.exif_transpose(image)
    icc = image.info.get("icc_profile")
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        flat = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(flat, image)
    image = image.convert("RGB")
    if icc:
        source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        image = ImageCms.profileToProfile(image, source_profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    width, height = image.size
    scale = LONG_SIDE_PX / max(width, height)
    size = (LONG_SIDE_PX, max(1, round(height * scale))) if width >= height else \
        (max(1, round(width * scale)), LONG_SIDE_PX)
    image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue(), source_size, size


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def check_not_examples(outputs: dict[str, bytes], examples: Path) -> None:
    if not examples.is_dir():
        return
    for example in sorted(p for p in examples.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        example_bytes = example.read_bytes()
        example_pixels = _pixels(example_bytes)
        for name, data in outputs.items():
            if data == example_bytes:
                raise SystemExit(f"{name} is byte-identical to {example}")
            pixels = _pixels(data)
            if pixels.shape == example_pixels.shape and np.array_equal(pixels, example_pixels):
                raise SystemExit(f"{name} is pixel-identical to {example}")


# --- output ----------------------------------------------------------------------------------------------------


def sources_markdown(records: list[dict[str, object]], total_bytes: int) -> str:
    lines = [
        "# Built-in training set: sources and licences",
        "",
        f"{len(records)} photographs for training fast-style networks when a user gives no training images (and "
        "as test data), taken from packages of PyPI and Debian. Each was converted to sRGB, resized so its long "
        f"side is {LONG_SIDE_PX} px (Lanczos) and re-encoded as JPEG quality {JPEG_QUALITY} without metadata; "
        "nothing else was changed. Each file stays under the licence of its original, given below with where "
        f"the package states it. Total {total_bytes / 1024:.0f} KiB. Generated by `bench/make_training_set.py` "
        "(its docstring has the commands to rebuild it); `sources.json` holds the same records with checksums.",
        "",
        "Attribution for the CC BY and CC BY-SA photos is the author column; the resized files are adaptations "
        "(resized, re-encoded) and are shared under the same licence as their originals. The originals of the GPL "
        "and LGPL wallpapers are in the Debian packages named (and in their Debian source packages).",
        "",
        "| file | package (version) | path inside the package | title | author | licence | stated in |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| `{r['file']}` ({r['width']}x{r['height']}) | {r['package_kind']} `{r['package']}` {r['version']} "
            f"| `{r['member']}` | {r['title']} | {r['author']} | {r['licence']} ({r['licence_name']}) "
            f"| {r['licence_stated_in']} |")
    notes = [r for r in records if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""] + [f"- `{r['file']}`: {r['note']}" for r in notes]
    counts: dict[str, int] = {}
    for r in records:
        counts[str(r["licence"])] = counts.get(str(r["licence"]), 0) + 1
    lines += ["", "## Counts by licence", ""] + [f"- {k} ({LICENCE_NAMES[k]}): {v}" for k, v in sorted(counts.items())]
    lines += ["", "## Looked at and left out", ""] + [f"- {what}: {why}." for what, why in EXCLUDED]
    return "\n".join(lines) + "\n"


def build(sources: list[Path], out: Path, examples: Path, any_version: bool) -> list[dict[str, object]]:
    packages = find_packages(sources)
    for name, package in packages.items():
        if package.version != PINNED_VERSIONS[name] and not any_version:
            raise SystemExit(f"{name} is {package.version}, pinned {PINNED_VERSIONS[name]} (or pass --any-version)")
    records: list[dict[str, object]] = []
    outputs: dict[str, bytes] = {}
    for pick in PICKS:
        package = packages[pick.package]
        original = package.read(pick.member)
        jpeg, source_size, size = to_training_jpeg(original)
        file = f"{pick.name}.jpg"
        outputs[file] = jpeg
        record: dict[str, object] = {
            "file": file, "width": size[0], "height": size[1], "sha256": hashlib.sha256(jpeg).hexdigest(),
            "package": package.name, "package_kind": package.kind, "version": package.version,
            "archive": package.archive.name, "member": pick.member,
            "member_sha256": hashlib.sha256(original).hexdigest(),
            "member_size": f"{source_size[0]}x{source_size[1]}",
        }
        record.update(licence_record(pick, package))
        if pick.note:
            record["note"] = pick.note
        records.append(record)
        print(f"{file:32s} {size[0]}x{size[1]} {len(jpeg) / 1024:6.1f} KiB  {pick.licence}")
    check_not_examples(outputs, examples)
    total = sum(len(data) for data in outputs.values())
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"the set is {total} bytes, more than {MAX_TOTAL_BYTES}")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.jpg"):
        if stale.name not in outputs:
            stale.unlink()
    for file, data in outputs.items():
        (out / file).write_bytes(data)
    document = {
        "generator": "bench/make_training_set.py",
        "pillow": PIL.__version__,
        "long_side_px": LONG_SIDE_PX,
        "jpeg_quality": JPEG_QUALITY,
        "images": records,
        "excluded": [{"what": what, "why": why} for what, why in EXCLUDED],
    }
    (out / "sources.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "SOURCES.md").write_text(sources_markdown(records, total), encoding="utf-8")
    print(f"{len(records)} images, {total / 1024:.0f} KiB, into {out}")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="wheel and .deb files, or folders that hold them")
    parser.add_argument("--out", type=Path, default=Path("data/training"))
    parser.add_argument("--examples", type=Path, default=Path("examples"))
    parser.add_argument("--any-version", action="store_true", help="accept versions other than the pinned ones")
    args = parser.parse_args(argv)
    build(args.sources, args.out, args.examples, args.any_version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
