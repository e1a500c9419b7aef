"""The shots sweep: for every task, shot count and seed, a demo block drawn from the task's pool
and all of the task's evaluation examples scored against it.

One record per (task, shots, seed) holds every example's score in a fixed order, so two models
evaluated with the same settings can be compared example by example (`evaluate.stats`).
Demonstrations depend on (natural task, seed) only: a remapped copy sees the same examples as
its natural task, under its own labels.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from manyicl.choices import NeedNext, decision_depth, pick_choice
from manyicl.evaluate.engine import TOP_K, Completion, EvalEngine
from manyicl.evaluate.scoring import exact_match, first_answer, rouge_l
from manyicl.evaluate.suite import EvalTask
from manyicl.prompting import (
    BlockPadding,
    HFTokenizer,
    PromptFormat,
    assemble,
    block_padding,
    fill,
    plan_shots,
    tokenize_example,
    tokenize_header,
    tokenize_query,
)
from manyicl.prompting.render import leading_literal
from manyicl.tasks.task import TaskExample


@dataclass(frozen=True)
class Cell:
    """One (task, shots, seed): its demo block and its queries, as token ids."""

    task: EvalTask
    shots: int | None  # None: as many as fit
    seed: int
    block: list[int]
    demos: list[TaskExample]  # the demonstrations in the block, in order
    evals: list[TaskExample]
    queries: list[list[int]]

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.task.name, shots_label(self.shots), self.seed)

    @property
    def block_hash(self) -> str:
        """Identifies the demo block: two cells with the same block score the same."""
        return hashlib.sha256(json.dumps(self.block).encode()).hexdigest()[:16]


def shots_label(shots: int | None) -> str:
    return "max" if shots is None else str(shots)


def demo_block(
    task: EvalTask,
    pool: Sequence[TaskExample],
    shots: int | None,
    seed: int,
    fmt: PromptFormat,
    tok: HFTokenizer,
    room: int,
    padding: BlockPadding | None = None,
) -> tuple[list[int], list[TaskExample]]:
    """(ids of header + demonstrations, the demonstrations): `shots` drawn by a shuffle of the
    pool seeded by (natural task, seed), or as many as fit in `room` tokens when `shots` is
    None; always the longest prefix of that order that fits, with the format's filler after it
    as the server renders it."""
    header = tokenize_header(fmt, tok, task.instruction_at)
    order = random.Random(f"{seed}:{task.base}").sample(range(len(pool)), len(pool))
    wanted = [pool[i] for i in (order if shots is None else order[:shots])]
    examples = [tokenize_example(fmt, tok, e.as_demo()) for e in wanted]
    filler = padding.reserve if padding else 0
    plan = plan_shots(
        [len(e) for e in examples], fixed_tokens=len(header) + filler, max_context=room
    )
    block = assemble(header, [examples[i] for i in plan.indices], padding=padding).token_ids
    return block, [wanted[i] for i in plan.indices]


def answer_ids(fmt: PromptFormat, tok: HFTokenizer, text: str) -> list[int]:
    """A choice's tokens as a demonstration's answer has them (with the end-of-answer text)."""
    return fill(fmt.output, tok, leading_literal(fmt.input), output=text)


def task_budget(
    task: EvalTask,
    fmt: PromptFormat,
    tok: HFTokenizer,
    max_context: int,
    max_new: int,
    free: bool = False,
) -> tuple[int, int]:
    """(room for the demo block, tokens to generate): the longest query and answer must fit.

    A choice task generates only as deep as its choices share tokens (usually 1 token): the
    log-probabilities along those tokens rank the choices, and the rest of the answer would
    change nothing; with `free` it also generates whole answers, to score them unconstrained.
    A generation task generates up to its longest answer and 2 tokens more.
    """
    examples = [*task.pool, *task.evals]
    longest_query = max(len(tokenize_query(fmt, tok, e.input)) for e in task.evals)
    answers = [[answer_ids(fmt, tok, c) for c in _answers(e)] for e in examples]
    longest_answer = max(len(a) for choices in answers for a in choices)
    if task.metric == "choice" and not free:
        generate = max(decision_depth(choices) for choices in answers)
    else:
        generate = min(max_new, longest_answer + 2)
    return max_context - longest_query - max(generate, longest_answer), generate


def _answers(ex: TaskExample) -> Sequence[str]:
    return ex.choices or (ex.output,)


def cells_for(
    task: EvalTask,
    shots: int | None,
    seeds: int,
    fmt: PromptFormat,
    tok: HFTokenizer,
    room: int,
    block_size: int | None = None,
) -> list[Cell]:
    """The cells of one (task, shots): one per seed (one only without demonstrations); each
    demo block padded as a server with KV blocks of `block_size` pads it."""
    padding = block_padding(fmt, tok, block_size)
    cells = []
    for seed in range(seeds if shots != 0 else 1):
        pool, evals = task.at_seed(seed)
        block, demos = demo_block(task, pool, shots, seed, fmt, tok, room, padding)
        queries = [tokenize_query(fmt, tok, e.input) for e in evals]
        cells.append(Cell(task, shots, seed, block, demos, evals, queries))
    return cells


def score_cells(
    engine: EvalEngine, cells: Sequence[Cell], fmt: PromptFormat, tok: HFTokenizer, generate: int
) -> list[dict]:
    """Prefill every cell's block, run all their queries in one batch, score them."""
    engine.warm([c.block for c in cells])
    prompts = [c.block + q for c in cells for q in c.queries]
    examples = [e for c in cells for e in c.evals]
    is_choice = cells[0].task.metric == "choice"
    completions = engine.complete(prompts, generate, fmt.stop, TOP_K if is_choice else 0)
    picks = rank_choices(engine, prompts, completions, examples, fmt, tok) if is_choice else None
    records, i = [], 0
    for c in cells:
        n = len(c.queries)
        answers = [first_answer(x.text, fmt.stop) for x in completions[i : i + n]]
        free = [exact_match(a, e.output) for a, e in zip(answers, c.evals, strict=True)]
        if picks is not None:
            chosen = zip(picks[i : i + n], c.evals, strict=True)
            record = _record(c, [float(e.choices[p] == e.output) for p, e in chosen])
            record["free_scores"] = free  # exact match of the unconstrained greedy answer
        elif c.task.metric == "rouge":
            pairs = zip(answers, c.evals, strict=True)
            record = _record(c, [rouge_l(a, e.output) for a, e in pairs])
        else:
            record = _record(c, free)
        records.append(record)
        i += n
    return records


def _record(c: Cell, scores: list[float]) -> dict:
    return {
        "task": c.task.name,
        "base": c.task.base,
        "remap": c.task.remap and str(c.task.remap),
        "metric": c.task.metric,
        "shots": shots_label(c.shots),
        "seed": c.seed,
        "shots_used": len(c.demos),
        "prefix_tokens": len(c.block),
        "block_hash": c.block_hash,
        "score": statistics.fmean(scores),
        "scores": scores,  # each evaluation example's, in order
    }


def rank_choices(
    engine: EvalEngine,
    prompts: Sequence[list[int]],
    completions: Sequence[Completion],
    examples: Sequence[TaskExample],
    fmt: PromptFormat,
    tok: HFTokenizer,
) -> list[int]:
    """Each example's picked choice: from the top-k along its greedy answer where they decide,
    else by rounds of one-token picks among the candidates (`EvalEngine.pick`)."""
    choice_ids = [[answer_ids(fmt, tok, c) for c in e.choices] for e in examples]
    known = [{tuple(c.token_ids[:d]): lp for d, lp in enumerate(c.logprobs)} for c in completions]
    while True:
        results = [pick_choice(ch, kn) for ch, kn in zip(choice_ids, known, strict=True)]
        need = [(i, r) for i, r in enumerate(results) if isinstance(r, NeedNext)]
        if not need:
            return results
        paths = [prompts[i] + list(r.path) for i, r in need]
        picked = engine.pick(paths, [r.tokens for _, r in need])
        for (i, r), token in zip(need, picked, strict=True):
            known[i][r.path] = token
