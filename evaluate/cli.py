"""`manyicl-eval`: score held-out tasks at each shot count, on vLLM as the server answers.

manyicl-eval --adapter out/ --out runs/eval/out                 # the standard evaluation
manyicl-eval --model default --out runs/eval/base --preset quick
manyicl-eval --adapter out/ --out runs/eval/long --preset scaling   # shots up to 8K tokens
manyicl-eval compare runs/eval/base runs/eval/out [...]         # paired differences from base
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import manyicl.lifeline  # noqa: F401 - in the engine's spawned processes: exit with the parent
from manyicl.cliargs import exits_on
from manyicl.evaluate.config import EvalConfig, parse_config


def load_tasks(spec: str) -> list:
    """`heldout`, `validation` or `forgetting` (the default mixture's lists), or a comma list
    of "source:name" tasks and .jsonl files."""
    from manyicl.finetune.mixture import HELDOUT_LISTS, heldout_eval_tasks
    from manyicl.tasks import load_task
    from manyicl.tasks.task import load_jsonl

    lists = {"heldout": "eval"} | {k: k for k in HELDOUT_LISTS if k != "eval"}
    if spec in lists:
        names = heldout_eval_tasks(key=lists[spec])
    else:
        names = [s for s in spec.split(",") if s]
    return [load_jsonl(Path(n)) if n.endswith(".jsonl") else load_task(n) for n in names]


def _done(path: Path) -> dict[tuple, dict]:
    """Records already written by an interrupted run of the same config."""
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["task"], r["shots"], r["seed"]): r for r in records}


def _check_config(cfg: EvalConfig) -> None:
    """An --out folder holds one config's records: resuming with other settings would mix
    them."""
    path, mine = cfg.out / "config.json", _config_json(cfg)
    if path.is_file() and json.loads(path.read_text()) != mine:
        raise ValueError(f"{cfg.out} holds records of another config; use a new --out")
    cfg.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=2) + "\n")


def _config_json(cfg: EvalConfig) -> dict:
    keep = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    for k in ("out", "name", "kv_cache_gib", "enforce_eager"):  # change nothing scored
        keep.pop(k)
    return keep


def run(cfg: EvalConfig) -> dict:
    """The whole sweep (resuming from records.jsonl); writes results.json/.md and scores.png."""
    from manyicl.evaluate.suite import build_suite
    from manyicl.finetune.setup import load_format
    from manyicl.manifest import read_manifest
    from manyicl.models import resolve_model
    from manyicl.prompting import HFTokenizer

    _check_config(cfg)
    manifest = read_manifest(cfg.adapter) if cfg.adapter else None
    model_path = resolve_model(cfg.model or (manifest.base_model.locate() if manifest else None))
    tok = HFTokenizer.from_pretrained(model_path)
    fmt = manifest.prompt_format if manifest else load_format(cfg.prompt_format, tok.hf)
    suite = build_suite(load_tasks(cfg.tasks), cfg.eval_examples, cfg.remap_kinds)
    units = [(t, k) for t in suite for k in cfg.shot_list if not (t.remap and k == 0)]
    started = time.perf_counter()
    done = _score(cfg, units, model_path, tok, fmt)
    return _write(cfg, units, done, model_path, time.perf_counter() - started)


def _score(cfg: EvalConfig, units, model_path: str, tok, fmt) -> dict[tuple, dict]:
    """Score every (task, shots) unit's cells that records.jsonl does not hold yet."""
    from tqdm import tqdm

    sweep = _Sweep(cfg, model_path, tok, fmt)
    try:
        for task, shots in tqdm(units, desc="evaluating", unit="cell"):
            sweep.score(task, shots)
    finally:
        sweep.close()
    return sweep.done


class _Sweep:
    """Appends each record to records.jsonl as it is scored. A shot count beyond what fits
    gives the very block of `max`: such a cell is scored once. The engine starts only if
    something is left to score."""

    def __init__(self, cfg: EvalConfig, model_path: str, tok, fmt):
        self.cfg, self.model_path, self.tok, self.fmt = cfg, model_path, tok, fmt
        self.path = cfg.out / "records.jsonl"
        self.done = _done(self.path)
        self.by_block = {(r["task"], r["seed"], r["block_hash"]): r for r in self.done.values()}
        self.engine = None

    def score(self, task, shots: int | None) -> None:
        from manyicl.evaluate.runner import cells_for, score_cells, task_budget

        cfg, tok, fmt = self.cfg, self.tok, self.fmt
        room, generate = task_budget(
            task, fmt, tok, cfg.max_context, cfg.max_new_tokens, cfg.free_generation
        )
        cells = cells_for(task, shots, cfg.seeds, fmt, tok, room, cfg.block_size)
        cells = [c for c in cells if c.key not in self.done]
        same = {c.key: self.by_block.get((c.task.name, c.seed, c.block_hash)) for c in cells}
        records = [{**same[c.key], "shots": c.key[1], "seconds": 0} for c in cells if same[c.key]]
        todo = [c for c in cells if same[c.key] is None]
        if todo:
            started = time.perf_counter()
            scored = score_cells(self._engine(), todo, fmt, tok, generate)
            for record in scored:  # the batch's time, shared by its cells
                record["seconds"] = round((time.perf_counter() - started) / len(scored), 2)
            records += scored
        for r in records:
            self.done[(r["task"], r["shots"], r["seed"])] = r
            self.by_block[(r["task"], r["seed"], r["block_hash"])] = r
            with self.path.open("a") as f:
                f.write(json.dumps(r) + "\n")

    def _engine(self):
        from manyicl.evaluate.engine import EvalEngine

        if self.engine is None:
            adapter = self.cfg.adapter
            self.engine = EvalEngine.start(self.model_path, adapter, _engine_config(self.cfg))
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


def _write(cfg: EvalConfig, units, done: dict, model_path: str, wall: float) -> dict:
    """results.json (every record of this config's cells, and the aggregate), results.md and
    scores.png. `seconds` is the scoring time of every cell, summed over resumed runs (engine
    start-up excluded); `wall_seconds` this invocation's wall time."""
    from manyicl.evaluate.report import aggregate, plot, table
    from manyicl.evaluate.runner import shots_label

    keys = {(t.name, shots_label(k)) for t, k in units}
    records = [r for r in done.values() if (r["task"], r["shots"]) in keys]
    rows = aggregate(records)
    name = cfg.name or (cfg.adapter.name if cfg.adapter else Path(model_path).name)
    result = {
        "name": name,
        "model": model_path,
        "adapter": cfg.adapter and str(cfg.adapter),
        "config": _config_json(cfg),
        "seconds": round(sum(r.get("seconds", 0) for r in records), 1),
        "wall_seconds": round(wall, 1),
        "records": records,
        "scores": rows,
    }
    (cfg.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (cfg.out / "results.md").write_text(f"# {name}\n\n" + table(rows))
    plot({name: rows}, cfg.out / "scores.png", f"held-out tasks, {name}", "natural")
    return result


def _engine_config(cfg: EvalConfig):
    from manyicl.evaluate.engine import EngineConfig

    return EngineConfig(
        cfg.max_context, cfg.dtype, cfg.block_size, cfg.kv_cache_gib, cfg.enforce_eager
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        from manyicl.evaluate.compare import main as compare_main

        return compare_main(argv[1:])
    cfg = parse_config(argv)
    from manyicl.artifacts import ArtifactError

    with exits_on("manyicl-eval", FileNotFoundError, ValueError, ArtifactError):
        result = run(cfg)
    print((cfg.out / "results.md").read_text())
    print(f"written to {cfg.out}/ ({len(result['records'])} records, {result['seconds']:.0f} s)")


if __name__ == "__main__":  # vLLM's CPU engine spawns processes: keep this guard
    main()
