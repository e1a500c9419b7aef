"""The shots sweep: for every held-out task, shot count and seed, score the task's evaluation
examples with demonstrations drawn from its own demonstration pool."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from manyicl.evaluate.engine import PrefixScorer
from manyicl.evaluate.scoring import exact_match, first_answer, rank_choice, rouge_l
from manyicl.finetune.tasks import Task, TaskExample
from manyicl.prompting import (
    HFTokenizer,
    PromptFormat,
    ShotPolicy,
    assemble,
    fill,
    plan_shots,
    tokenize_example,
    tokenize_header,
    tokenize_query,
)
from manyicl.prompting.render import leading_literal


@dataclass(frozen=True)
class Split:
    """A task's examples, split once (seed 0): demonstrations come only from `pool`."""

    task: Task
    pool: tuple[TaskExample, ...]
    evals: tuple[TaskExample, ...]


def split_task(task: Task, eval_examples: int) -> Split:
    """The first `eval_examples` of a seeded shuffle are evaluated; the rest are the pool."""
    examples = list(task.examples)
    random.Random(f"eval:{task.name}").shuffle(examples)
    n = min(eval_examples, len(examples) // 2)
    return Split(task, tuple(examples[n:]), tuple(examples[:n]))


def demo_block(
    split: Split, shots: int | None, seed: int, fmt: PromptFormat, tok: HFTokenizer, room: int
) -> tuple[list[int], int]:
    """(ids of header + demonstrations, shots used): `shots` drawn by a seeded shuffle of the
    pool, or as many as fit in `room` tokens when `shots` is None ("max")."""
    header = tokenize_header(fmt, tok, split.task.instruction)
    order = random.Random(f"{seed}:{split.task.name}").sample(
        range(len(split.pool)), len(split.pool)
    )
    wanted = len(order) if shots is None else min(shots, len(order))
    examples = [tokenize_example(fmt, tok, split.pool[i].as_demo()) for i in order[:wanted]]
    plan = plan_shots(
        [len(e) for e in examples],
        fixed_tokens=len(header),
        max_context=room,
        policy=ShotPolicy.FIRST,
    )
    return assemble(header, [examples[i] for i in plan.indices]).token_ids, len(plan.indices)


def score_example(
    scorer: PrefixScorer,
    ex: TaskExample,
    metric: str,
    fmt: PromptFormat,
    tok: HFTokenizer,
    max_new_tokens: int,
) -> dict[str, float]:
    """Scores of one evaluation example against the prefix in `scorer`."""
    query = tokenize_query(fmt, tok, ex.input)
    stop_ids = {t for t in [tok.eos_id] if t is not None}
    generated = scorer.generate(query, max_new_tokens, stop_ids, tok.decode, fmt.stop)
    answer = first_answer(tok.decode(generated), fmt.stop)
    scores = {"exact_match": exact_match(answer, ex.output)}
    if metric == "rouge":
        scores["rouge_l"] = rouge_l(answer, ex.output)
    if metric == "multiple_choice" and ex.choices:
        follower = leading_literal(fmt.input)
        options = [fill(fmt.output, tok, follower, output=c) for c in ex.choices]
        picked = ex.choices[rank_choice(scorer.choice_nlls(query, options))]
        scores["rank_accuracy"] = float(picked == ex.output)
    return scores


def primary(metric: str) -> str:
    """The headline score of a task's metric."""
    return {"multiple_choice": "rank_accuracy", "rouge": "rouge_l"}.get(metric, "exact_match")


def evaluate_task(
    scorer: PrefixScorer,
    split: Split,
    shots: Sequence[int | None],
    seeds: int,
    fmt: PromptFormat,
    tok: HFTokenizer,
    max_context: int,
    max_new_tokens: int,
    progress: bool = True,
) -> list[dict]:
    """One record per (shots, seed): the mean of each score over the evaluation examples."""
    longest_query = max(len(tokenize_query(fmt, tok, e.input)) for e in split.evals)
    longest_choice = max((len(c) for e in split.evals for c in e.choices or ()), default=0)
    room = max_context - longest_query - max(max_new_tokens, longest_choice * 4)
    records = []
    for k in tqdm(shots, desc=split.task.name, disable=not progress, leave=False):
        for seed in range(seeds if k != 0 else 1):  # zero shots: no demonstrations to sample
            ids, used = demo_block(split, k, seed, fmt, tok, room)
            scorer.set_prefix(ids)
            per_example = [
                score_example(scorer, ex, split.task.metric, fmt, tok, max_new_tokens)
                for ex in split.evals
            ]
            means = {
                name: statistics.fmean(s[name] for s in per_example) for name in per_example[0]
            }
            records.append(
                {
                    "task": split.task.name,
                    "metric": split.task.metric,
                    "shots": "max" if k is None else k,
                    "shots_used": used,
                    "seed": seed,
                    "prefix_tokens": len(ids),
                    **means,
                }
            )
    return records
