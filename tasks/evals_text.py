"""Text that every row of an evals dataset shares, found and cut: the prompt, not the item.

The rows of one data file repeat an instruction (in the system message, or at the start or end
of every item) and write every answer the same way ("The correct option is: A", "[D]"); a bare
example keeps only what differs between rows. Cuts fall between sentences or lines (or after a
long lead-in or label), so that words the items merely happen to share are not taken for one.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable

MIN_AFFIX = 6  # whole sentences or lines that every item starts or ends with are a prompt
MIN_COLON_LEAD = 30  # "Swap the words in this string: ..." but not "Sentence A: ..."
_SENTENCE_SPLIT = re.compile(r"((?<=[.?!])\s+|\n+|(?<=[。？！]))")
_SENTENCE_END = re.compile(r"[.?!]\s|\n|[。？！]")
_LEAD = re.compile(r"[^\W\d_]+(?: [^\W\d_]+)*:?")  # words, perhaps a colon: no numbers
_COLON = re.compile(r"[:：]\s*")
_SENTENCE_START = re.compile(r"[.?!]\s|\n|[。？！]|^\s+(?=[A-Z])")  # " Answer only with..."
_WRAPPED = re.compile(r"\[[^\[\],]*\]|\{[^{},]*\}")  # "[D]", "{3}": an answer format to unwrap


def shared_sentences(systems: list[str]) -> tuple[list[str], str]:
    """Each row's system message less the sentences that most rows' have, and the sentences
    that every row's has: the instruction. What is left (a board, a puzzle, which bigram to
    count, the exam's subject, a rarer wording) is part of the row's item."""
    if not systems or not all(systems):
        return systems, ""
    rows = Counter(systems)
    pieces = {text: _SENTENCE_SPLIT.split(text) for text in rows}
    counts = Counter()
    for text, p in pieces.items():
        counts.update(dict.fromkeys(set(p[::2]), rows[text]))
    shared = {sentence for sentence, n in counts.items() if 2 * n > len(systems)}
    rest = {text: _keep(p, lambda sentence: sentence not in shared) for text, p in pieces.items()}
    everywhere = {sentence for sentence, n in counts.items() if n == len(systems)}
    usual = rows.most_common(1)[0][0]
    return [rest[text] for text in systems], _keep(pieces[usual], everywhere.__contains__)


def _keep(pieces: list[str], wanted: Callable[[str], bool]) -> str:
    """Rejoin the wanted sentences of `pieces` (sentence, separator, sentence, ...)."""
    kept = ["".join(pieces[i : i + 2]) for i in range(0, len(pieces), 2) if wanted(pieces[i])]
    return "".join(kept).strip()


def strip_lead(answers: list[str]) -> list[str]:
    """Answers less the words that every one of them starts with ("The correct option is: A",
    "A: Flush"): a lead-in sentence or a label, never a word of the answer itself."""
    common = os.path.commonprefix(answers)  # noqa: RUF071 - strings, not paths
    lead = common[: common.rfind(" ") + 1]
    labelled = lead.strip().endswith(":") or len(lead.split()) >= 3
    if _LEAD.fullmatch(lead.strip()) and labelled:  # answers are stripped: none is all lead
        return [a[len(lead) :].strip() for a in answers]
    return answers


def unwrap(answers: list[str]) -> list[str]:
    """Answers less the brackets that every one of them is written in ("[D]" -> "D"): a format
    the prompt asked for so that a grader can find the answer in a longer reply."""
    if answers and all(_WRAPPED.fullmatch(a) for a in answers):
        return [a[1:-1].strip() for a in answers]
    return answers


def strip_affixes(items: list[str]) -> tuple[list[str], str]:
    """Cut the instruction that every item starts (or ends) with; returns the items and the
    cut prefix. Cuts fall between sentences or lines (or after a long lead-in's colon) and
    never empty an item."""
    if len(items) < 2:
        return items, ""
    common = os.path.commonprefix(items)  # noqa: RUF071 - strings, not paths
    prefix = common[: _prefix_cut(common)]
    if len(prefix) < MIN_AFFIX or any(len(i) == len(prefix) for i in items):
        prefix = ""
    items = [i[len(prefix) :] for i in items]
    common = os.path.commonprefix([i[::-1] for i in items])[::-1]  # noqa: RUF071
    first = _SENTENCE_START.search(common)
    suffix = common[first.end() :] if first else ""
    if len(suffix) >= MIN_AFFIX and all(len(i) > len(suffix) for i in items):
        items = [i[: -len(suffix)] for i in items]
    return [i.strip() for i in items], prefix.strip()


def _prefix_cut(common: str) -> int:
    """Where a shared prefix may be cut: after its last sentence or line, or after a colon
    that ends a long lead-in ("Which scale has the following notes: ")."""
    ends = [0] + [m.end() for m in _SENTENCE_END.finditer(common)]
    leads = [
        m.end()
        for m in _COLON.finditer(common)
        if m.end() - max(e for e in ends if e <= m.start()) >= MIN_COLON_LEAD
    ]
    return max(ends + leads)
