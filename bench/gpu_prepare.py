"""Build the folder that bench/gpu.py travels in to a GPU machine that has no network.

    python bench/gpu_prepare.py --dest /work/main/.gpu     # then run its run.sh there

The folder (kept under 64 MiB, never committed: add it to .git/info/exclude) holds:

- src/ and bench/gpu.py: this checkout's code;
- model.tar.xz: the packaged all-MiniLM-L6-v2 with its float weights stored as fp16
  (45 MB, 41 MB compressed; fp32 would not fit). On the GPU the encoder runs in bf16,
  so its input weights are the fp16 copy cast to bf16; the fp32 reference there is the
  fp16 copy cast to fp32;
- data.tar.xz: SciFact corpus, queries and test qrels, STS-B (2.3 MB compressed);
- whl/: wheels of what the GPU image lacks (faiss-cpu, SQLAlchemy's pure-Python wheel);
- run.sh: installs the wheels to /tmp/site, unpacks, runs bench/gpu.py into $OUT.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
               "sentence_bert_config.json", "modules.json", "config_sentence_transformers.json", "1_Pooling/config.json"]
DATA_FILES = ["scifact/corpus.jsonl", "scifact/queries.jsonl", "scifact/qrels/test.tsv",
              "stsbenchmark/sts-train.csv", "stsbenchmark/sts-dev.csv", "stsbenchmark/sts-test.csv"]
WHEELS = [("faiss-cpu==1.15.1", ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64"]),
          ("sqlalchemy==2.1.9", ["any"])]
RUN = """set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=$PWD/.gpu/src:/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -c "import tarfile; [tarfile.open(f'.gpu/{n}.tar.xz').extractall('/tmp/lw', filter='data') for n in ('model', 'data')]"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv > $OUT/nvidia-smi.txt || true
python3 .gpu/bench/gpu.py --device cuda --model /tmp/lw/model --data /tmp/lw/data --out $OUT/gpu.json "$@" 2>&1 | tee $OUT/log.txt
"""


def model_archive(dest: Path) -> None:
    from safetensors.torch import load_file, save_file

    sys.path.insert(0, str(ROOT / "src"))
    from layerwise.indexer.model import resolve_model_path

    source = Path(resolve_model_path(None)[1])
    weights = load_file(source / "model.safetensors")
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    with tempfile.TemporaryDirectory() as tmp:
        save_file(half, f"{tmp}/model.safetensors", metadata={"format": "pt"})
        with tarfile.open(dest / "model.tar.xz", "w:xz", preset=9) as tar:
            tar.add(f"{tmp}/model.safetensors", "model/model.safetensors")
            for name in MODEL_FILES:
                tar.add(source / name, f"model/{name}")
            info = tarfile.TarInfo("model/2_Normalize")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)


def data_archive(dest: Path, data: Path) -> None:
    with tarfile.open(dest / "data.tar.xz", "w:xz", preset=9) as tar:
        for name in DATA_FILES:
            tar.add(data / name, f"data/{name}")


def wheels(dest: Path) -> None:
    (dest / "whl").mkdir(exist_ok=True)
    for spec, platforms in WHEELS:
        flags = [arg for p in platforms for arg in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                        "--implementation", "cp", *flags, "-d", str(dest / "whl"), spec], check=True)


def code(dest: Path) -> None:
    shutil.rmtree(dest / "src", ignore_errors=True)
    shutil.copytree(ROOT / "src" / "layerwise", dest / "src" / "layerwise", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "bench").mkdir(exist_ok=True)
    shutil.copy(ROOT / "bench" / "gpu.py", dest / "bench" / "gpu.py")
    (dest / "run.sh").write_text(RUN)


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=ROOT / ".gpu")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--code-only", action="store_true", help="refresh src/, bench/gpu.py and run.sh only")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    code(args.dest)
    if not args.code_only:
        data_archive(args.dest, args.data)
        wheels(args.dest)
        model_archive(args.dest)
    print(f"{args.dest}: {size(args.dest) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
