"""`manyicl-finetune`: train one ManyICL LoRA adapter.

manyicl-finetune --out out/                       # default model and mixture
torchrun --nproc-per-node 2 -m manyicl.finetune.cli --out out/   # data parallel
manyicl-finetune soup --out out/ a/ b/ c/          # the mean of several adapters' deltas
manyicl-finetune learnability --out scores.json    # each task's many-shot gain under the base
manyicl-finetune synthetic --out dir/              # tasks only demonstrations solve, + mixture
"""

from __future__ import annotations

import sys

from manyicl.cliargs import exits_on
from manyicl.finetune.config import parse_config


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["soup"]:
        from manyicl.finetune.soup import main as soup_main

        return soup_main(argv[1:])
    if argv[:1] == ["learnability"]:
        from manyicl.finetune.learnability import main as learnability_main

        return learnability_main(argv[1:])
    if argv[:1] == ["synthetic"]:
        from manyicl.finetune.synthetic import main as synthetic_main

        return synthetic_main(argv[1:])
    cfg = parse_config(argv)
    from manyicl.finetune.setup import FinetuneError
    from manyicl.finetune.trainer import train  # torch import after --help

    with exits_on("manyicl-finetune", FinetuneError):
        result = train(cfg)
    if result is not None:
        metrics = result.manifest.metrics
        print(
            f"adapter written to {cfg.out} (train loss {metrics['train_loss']:.4f}, "
            f"eval loss {metrics['eval_loss']:.4f})"
        )


if __name__ == "__main__":
    main()
