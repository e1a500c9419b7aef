"""Word-form tasks: English inflection from `lemminflect`'s lexicon (MIT) and numbers in words
from `num2words` (LGPL-2.1, used unmodified as a generator).

- English, one family per part of speech plus `word/`: `noun/plural` ("mouse" -> "mice"),
  `verb/past` ("go" -> "went"), `verb/irregular_past` (irregular verbs only),
  `adjective/comparative`, `word/lemma` ("went" -> "go"), `word/inflection_type`
  ("going" -> "gerund": a classification with seven labels), `verb/regularity`
  ("go" -> "irregular"). Items come from the lexicon's lower-case lemmas; a form with two
  listed spellings, or an input with two answers, is left out.
- Numbers, "family/lang": `cardinal/fr` ("427" -> "quatre cent vingt-sept"), `ordinal/en`
  ("3" -> "third"), `ordinal_num/en` ("3" -> "3rd"), `year/en` ("1987" -> "nineteen
  eighty-seven"), `currency/de` ("12.50" -> "zwölf Euro und fünfzig Cent"), and the way
  back, `words_to_number/en` ("four hundred and twenty-seven" -> "427").

Every task is a pure function of (name, seed, size, package version): see tasks/generated.py.
"""

from __future__ import annotations

import functools
import gzip
import importlib.metadata
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import lemminflect
from lemminflect import config as lemminflect_config
from num2words import num2words

from manyicl.tasks.generated import GeneratedKey, cached, sampler, split_params
from manyicl.tasks.task import Task, TaskExample

DEFAULTS = {"seed": 0, "size": 1000}
MAX_SIZE = 2000
MIN_EXAMPLES = 100
TAGS = {
    "NOUN": ("NN", "NNS"),
    "VERB": ("VB", "VBD", "VBN", "VBG", "VBZ"),
    "ADJ": ("JJ", "JJR", "JJS"),
}
CATEGORIES = {"noun": "NOUN", "verb": "VERB", "adj": "ADJ"}  # the lexicon file's names
# name -> (part of speech, input tag, output tag, irregular forms only, instruction)
PAIRS = {
    "noun/plural": ("NOUN", "NN", "NNS", False, "Give the plural."),
    "noun/singular": ("NOUN", "NNS", "NN", False, "Give the singular."),
    "noun/irregular_plural": ("NOUN", "NN", "NNS", True, "Give the plural."),
    "verb/past": ("VERB", "VB", "VBD", False, "Give the past tense."),
    "verb/past_participle": ("VERB", "VB", "VBN", False, "Give the past participle."),
    "verb/gerund": ("VERB", "VB", "VBG", False, "Give the -ing form."),
    "verb/third_person": ("VERB", "VB", "VBZ", False, "Give the third person singular."),
    "verb/irregular_past": ("VERB", "VB", "VBD", True, "Give the past tense."),
    "verb/irregular_participle": ("VERB", "VB", "VBN", True, "Give the past participle."),
    "verb/past_to_present": ("VERB", "VBD", "VBZ", False, "Give the present tense (he/she)."),
    "adjective/comparative": ("ADJ", "JJ", "JJR", False, "Give the comparative."),
    "adjective/superlative": ("ADJ", "JJ", "JJS", False, "Give the superlative."),
    "adjective/comparative_to_superlative": ("ADJ", "JJR", "JJS", False, "Give the superlative."),
}
LABELS = {"NNS": "plural", "VBD": "past", "VBN": "participle", "VBG": "gerund"}
LABELS |= {"VBZ": "third person", "JJR": "comparative", "JJS": "superlative"}
CLASSIFICATIONS = ("word/inflection_type", "verb/regularity")
ENGLISH_OTHER = {
    "word/lemma": "Give the dictionary form.",
    "word/inflection_type": "Which inflection is this word?",
    "verb/regularity": "Is the verb regular or irregular?",
}
# family -> (languages, num2words' `to`, smallest and largest number, instruction)
NUMBERS = {
    "cardinal": ("en fr de es it pt nl pl ru tr sv da fi cs hu ja", "cardinal", 0, 9999),
    "ordinal": ("en fr de es it pt nl pl ru tr", "ordinal", 1, 1000),
    "ordinal_num": ("en", "ordinal_num", 1, 1000),
    "year": ("en de nl da no", "year", 1100, 2099),
    "currency": ("en fr de es", "currency", 100, 9999),  # in cents
    "words_to_number": ("en fr de es it", "cardinal", 0, 9999),
}
NUMBER_INSTRUCTIONS = {
    "cardinal": "Write the number in words in {lang}.",
    "ordinal": "Write the ordinal in words in {lang}.",
    "ordinal_num": "Write the ordinal with its suffix in {lang}.",
    "year": "Say the year in {lang}.",
    "currency": "Say the amount in euros in {lang}.",
    "words_to_number": "Write the {lang} number in digits.",
}
LANGUAGES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian"}
LANGUAGES |= {"pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "ru": "Russian"}
LANGUAGES |= {"tr": "Turkish", "sv": "Swedish", "da": "Danish", "fi": "Finnish", "cs": "Czech"}
LANGUAGES |= {"hu": "Hungarian", "ja": "Japanese", "no": "Norwegian"}
# lemminflect hard-codes "can" -> "could" over the lexicon's "can" -> "canned": neither is safe
MODALS = {("VERB", w) for w in ("can", "may", "will", "shall", "must", "ought", "dare")}
_WORD = re.compile(r"[a-z]{2,}")
_TRIPLE = re.compile(r"(.)\1\1")  # "freeer": a lexicon slip, not English


def sane(form: str, tag: str) -> bool:
    """Whether a listed form can be right: lower-case letters, no letter thrice in a row, and
    the ending its tag demands (the lexicon lists "torpedo" as the -s form of "torpedo")."""
    ending = {"VBZ": "s", "VBG": "ing"}.get(tag, "")
    return form.isalpha() and form.islower() and not _TRIPLE.search(form) and form.endswith(ending)


def regular(base: str, form: str, tag: str) -> bool:
    """Whether `form` follows the spelling rules (cat -> cats, try -> tried, stop -> stopped)."""
    if tag == "NNS":
        return form in {base + "s", base + "es", base[:-1] + "ies"}
    return form in {
        base + "ed",
        base + "d",
        base[:-1] + "ied",
        base + base[-1] + "ed",
        base + "ked",
    }


@functools.cache
def lexicon() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """(part of speech, ((tag, form), ...)) of each lower-case lemma in lemminflect's lexicon,
    in file order; a tag whose form has two spellings ("dreamed/dreamt") is left out."""
    entries = []
    with gzip.open(lemminflect_config.inflection_lu_fn, "rt", encoding="utf-8") as lines:
        for line in lines:
            lemma, category = line.split(",")[:2]
            upos = CATEGORIES.get(category)
            if upos is None or not _WORD.fullmatch(lemma) or (upos, lemma) in MODALS:
                continue
            forms = [(TAGS[upos][0], lemma)]
            for tag in TAGS[upos][1:]:
                spellings = lemminflect.getInflection(lemma, tag, inflect_oov=False)
                if len(spellings) == 1 and sane(spellings[0], tag):
                    forms.append((tag, spellings[0]))
            entries.append((upos, tuple(forms)))
    return tuple(dict.fromkeys(entries))


def unambiguous(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Sorted pairs, less every input with two answers ("lay": "lie" or "lay")."""
    answers: dict[str, set[str]] = defaultdict(set)
    for source, target in pairs:
        if source != target:
            answers[source].add(target)
    return sorted((s, next(iter(t))) for s, t in answers.items() if len(t) == 1)


def pair_items(upos: str, source: str, target: str, irregular: bool) -> list[tuple[str, str]]:
    """form -> form of one part of speech, e.g. VB -> VBD; irregular targets only on request."""
    pairs = []
    for pos, forms in lexicon():
        table = dict(forms)
        if pos != upos or source not in table or target not in table:
            continue
        if irregular and regular(table[TAGS[upos][0]], table[target], target):
            continue
        pairs.append((table[source], table[target]))
    return unambiguous(pairs)


def other_items(name: str) -> list[tuple[str, str]]:
    """The English tasks that are not one form -> another."""
    bases = {form for _, forms in lexicon() for tag, form in forms if tag in ("NN", "VB", "JJ")}
    pairs = []
    for upos, forms in lexicon():
        table = dict(forms)
        base = table[TAGS[upos][0]]
        if name == "verb/regularity" and "VBD" in table and "VBN" in table:
            kind = regular(base, table["VBD"], "VBD") and regular(base, table["VBN"], "VBN")
            pairs.append((base, "regular" if kind else "irregular"))
        for tag, form in forms[1:] if name != "verb/regularity" else ():
            if name == "word/lemma":
                pairs.append((form, base))
            elif not (tag == "VBN" and table.get("VBD") == form):  # "walked": label "past"
                pairs.append((form, LABELS[tag]))
    return [(s, t) for s, t in unambiguous(pairs) if name == "verb/regularity" or s not in bases]


@functools.cache
def english_items(name: str) -> tuple[tuple[str, str], ...]:
    """A lexicon task's sorted items."""
    if name in PAIRS:
        return tuple(pair_items(*PAIRS[name][:4]))
    return tuple(other_items(name))


def draw(rng: random.Random, low: int, high: int) -> int:
    """A number whose digit count is uniform first: a 2-digit number is as likely as a
    4-digit one, not 100 times rarer."""
    digits = rng.randint(len(str(low)), len(str(high)))
    return rng.randint(max(low, 10 ** (digits - 1) if digits > 1 else 0), min(high, 10**digits - 1))


def number_item(family: str, lang: str, rng: random.Random) -> tuple[str, str]:
    """One (input, output) of a number family."""
    _, to, low, high = NUMBERS[family]
    value = draw(rng, low, high)
    if family == "currency":
        text = f"{value // 100}.{value % 100:02d}"
        return text, str(num2words(Decimal(text), lang=lang, to=to))
    words = str(num2words(value, lang=lang, to=to))
    return (words, str(value)) if family == "words_to_number" else (str(value), words)


def number_items(family: str, lang: str, rng: random.Random, size: int) -> list[tuple[str, str]]:
    """`size` distinct inputs (fewer where the range has fewer), in drawing order."""
    seen: dict[str, str] = {}
    for _ in range(size * 20):
        if len(seen) >= size:
            break
        source, target = (part.strip() for part in number_item(family, lang, rng))
        if source and target and source not in seen:
            seen[source] = target
    return list(seen.items())


def list_tasks(cache: Path | None = None) -> list[str]:
    """Every task name (the packages carry their data, so `cache` is unused here)."""
    return list(_task_names())


@functools.cache
def _task_names() -> tuple[str, ...]:
    english = [n for n in (*PAIRS, *ENGLISH_OTHER) if len(english_items(n)) >= MIN_EXAMPLES]
    numbers = [f"{f}/{lang}" for f, spec in NUMBERS.items() for lang in spec[0].split()]
    return tuple(sorted(english + numbers))


def load_task(name: str, cache: Path | None = None) -> Task:
    """One task: `verb/past`, `cardinal/fr?seed=2&size=500`."""
    base, params = split_params(name, DEFAULTS)
    if base not in _task_names():
        valid = ", ".join(_task_names()[:6])
        raise ValueError(f"no words task {base!r}; e.g. {valid} (see list_tasks())")
    family, _, lang = base.partition("/")
    size = max(1, min(int(params["size"]), MAX_SIZE))
    package = "num2words" if family in NUMBERS else "lemminflect"
    key = GeneratedKey("words", base, params, importlib.metadata.version(package))
    examples = cached(key, _maker(base, key, size), size, cache)
    if family in NUMBERS:
        instruction = NUMBER_INSTRUCTIONS[family].format(lang=LANGUAGES[lang])
    else:
        instruction = PAIRS[base][4] if base in PAIRS else ENGLISH_OTHER[base]
    return Task(f"words:{name}", examples, instruction)


def _maker(base: str, key: GeneratedKey, size: int) -> Callable[[], Iterator[TaskExample]]:
    """What `cached` calls to make the examples the first time."""

    def make() -> Iterator[TaskExample]:
        rng = sampler(key)
        family, _, lang = base.partition("/")
        if family in NUMBERS:
            chosen = number_items(family, lang, rng, size)
        else:
            items = english_items(base)
            if base in CLASSIFICATIONS:
                chosen = balanced(items, rng, size)
            else:
                chosen = rng.sample(items, min(size, len(items)))
        return (TaskExample(source, target) for source, target in chosen)

    return make


def balanced(items: tuple[tuple[str, str], ...], rng: random.Random, size: int) -> list:
    """As many items of each label as of the rarest one (and `size` in all at most),
    shuffled: most verbs are regular, and a plain sample would teach "regular"."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for item in items:
        groups[item[1]].append(item)
    share = min(size // len(groups), *(len(group) for group in groups.values()))
    chosen = [item for label in sorted(groups) for item in rng.sample(groups[label], share)]
    rng.shuffle(chosen)
    return chosen
