"""Locale-data tasks generated from the Unicode CLDR data that `babel` ships (Unicode licence).

Two kinds of task, all "family/locale" or a bare family:

- look-ups over the data itself, sampled from a sorted list of items: `territory_name/fr`
  ("Germany" -> "Allemagne"), `language_name/de`, `currency_name/ja`, and, locale-free,
  `territory_code` ("Germany" -> "DE"), `territory_currency`, `territory_language`,
  `timezone_region` ("Germany" -> "Europe": the area of most of its time zones, a
  continent-like classification with few labels), `language_code`, `language_script`,
  `currency_code`;
- formatting of generated values by a locale's rules: `date/fr` ("2021-03-14" ->
  "14 mars 2021"), `decimal/de` ("1234.5" -> "1.234,5"), `currency_format/fr`,
  `compact/de` ("1234567" -> "1,2 Mio."), `unit/ru` ("22 kilometers" -> "22 километра"),
  `plural_category/ru` ("21" -> "one").

Every task is a pure function of (name, seed, size, babel version): see tasks/generated.py.
Outputs are normalised: every Unicode space becomes a plain space and invisible bidi marks
are dropped, so that an exact match does not hinge on characters a model cannot see.
"""

from __future__ import annotations

import datetime
import functools
import random
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import babel
from babel import Locale, core, dates, numbers, units

from manyicl.tasks.generated import GeneratedKey, cached, sampler, split_params
from manyicl.tasks.task import Task, TaskExample

LOCALES = ("fr de es it pt nl sv da nb fi pl cs ru uk ro tr el hu ja zh ko ar he hi id vi").split()
LOOKUP_FAMILIES = ("language_name", "territory_name", "currency_name")
FORMAT_FAMILIES = ("date", "decimal", "currency_format", "compact", "unit")
PLURAL_LOCALES = ("ar", "pl", "ro", "ru", "uk")  # >= 3 plural categories over integers
SINGLES = (
    "currency_code language_code language_script territory_code territory_currency "
    "territory_language timezone_region"
).split()
DEFAULTS = {"seed": 0, "size": 1000}
MAX_SIZE = 2000
MIN_EXAMPLES = 100
# Region codes that name no place (unknown, pseudo-locales) or a grouping, not a territory.
NOT_TERRITORIES = {"EU", "EZ", "UN", "ZZ", "QO", "XA", "XB"}
UNITS = (
    "length-kilometer length-meter length-centimeter length-mile length-foot length-inch "
    "mass-kilogram mass-gram mass-pound duration-hour duration-minute duration-second "
    "duration-day duration-week duration-month duration-year volume-liter area-square-meter"
).split()
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CNY", "INR", "CHF")
INSTRUCTIONS = {
    "language_name": "Name the language in {locale}.",
    "territory_name": "Name the country or territory in {locale}.",
    "currency_name": "Name the currency in {locale}.",
    "date": "Write the date as {locale} does.",
    "decimal": "Write the number as {locale} does.",
    "currency_format": "Write the amount as {locale} does.",
    "compact": "Write the number in short form as {locale} does.",
    "unit": "Write the quantity in {locale}.",
    "plural_category": "Give the CLDR plural category of the number in {locale}.",
}


def clean(text: str) -> str:
    """Plain spaces for Unicode spaces (NBSP, narrow NBSP) and no invisible format marks
    (RLM, ALM), so that a visible answer matches."""
    chars = (" " if unicodedata.category(c) == "Zs" else c for c in text)
    return "".join(c for c in chars if unicodedata.category(c) != "Cf").strip()


def names(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Sorted (input, output) items, without empty ones and without an input that would
    have two answers (two codes with one English name)."""
    answers: dict[str, set[str]] = defaultdict(set)
    for source, target in pairs:
        source, target = clean(source), clean(target)
        if source and target:
            answers[source].add(target)
    return sorted((s, next(iter(t))) for s, t in answers.items() if len(t) == 1)


def _territories() -> list[str]:
    """ISO 3166 alpha-2 codes of real territories, sorted."""
    english = Locale("en").territories
    return sorted(c for c in english if len(c) == 2 and c.isalpha() and c not in NOT_TERRITORIES)


def _current_currencies() -> dict[str, str]:
    """Territory -> its one legal-tender currency in use today (several: left out)."""
    result = {}
    for territory, spans in core.get_global("territory_currencies").items():
        current = sorted({code for code, _start, end, tender in spans if end is None and tender})
        if len(current) == 1:
            result[territory] = current[0]
    return result


def _locale_pairs(family: str, locale: str) -> list[tuple[str, str]]:
    """English name -> name in `locale`, for languages, territories or current currencies."""
    english, there = Locale("en"), Locale.parse(locale)
    if family == "language_name":
        codes = [c for c in english.languages if c.isalpha() and c.islower() and len(c) <= 3]
        return [(english.languages[c], there.languages[c]) for c in codes if c in there.languages]
    if family == "territory_name":
        table, codes = there.territories, _territories()
        return [(english.territories[c], table[c]) for c in codes if c in table]
    codes = sorted(set(_current_currencies().values()))
    return [(english.currencies[c], there.currencies[c]) for c in codes if c in there.currencies]


def _single_pairs(family: str) -> list[tuple[str, str]]:
    """The locale-free look-ups, all keyed by English names."""
    en = Locale("en")
    territories = [c for c in _territories() if c in en.territories]
    two_letter = sorted(c for c in en.languages if len(c) == 2 and c.isalpha())
    if family == "territory_code":
        return [(en.territories[c], c) for c in territories]
    if family == "language_code":
        return [(en.languages[c], c) for c in two_letter]
    if family == "currency_code":
        return [(en.currencies[c], c) for c in sorted(set(_current_currencies().values()))]
    if family == "territory_currency":
        current = _current_currencies()
        return [(en.territories[c], current[c]) for c in territories if c in current]
    if family == "territory_language":
        return _main_languages(en, territories)
    if family == "timezone_region":
        return _timezone_regions(en, territories)
    likely = core.get_global("likely_subtags")
    scripts = {c: likely[c].split("_")[1] for c in two_letter if c in likely}
    return [(en.languages[c], en.scripts[s]) for c, s in scripts.items() if s in en.scripts]


def _main_languages(en: Locale, territories: list[str]) -> list[tuple[str, str]]:
    """Territory -> the English name of the language most of its people speak."""
    pairs = []
    spoken = core.get_global("territory_languages")
    for code in territories:
        shares = spoken.get(code, {})
        ranked = sorted(shares, key=lambda lang: (-shares[lang]["population_percent"], lang))
        if ranked and ranked[0] in en.languages:
            pairs.append((en.territories[code], en.languages[ranked[0]]))
    return pairs


def _timezone_regions(en: Locale, territories: list[str]) -> list[tuple[str, str]]:
    """Territory -> the tz area ("Europe", "Pacific") that most of its zones lie in; areas
    with fewer than 5 territories (Arctic, Etc) are left out, a label seen once teaches
    nothing."""
    zones = core.get_global("territory_zones")
    regions = {}
    for code in territories:
        areas = Counter(z.split("/")[0] for z in zones.get(code, ()))
        if areas:
            area, count = max(sorted(areas.items()), key=lambda item: item[1])
            if 2 * count > sum(areas.values()):
                regions[code] = area
    common = {a for a, n in Counter(regions.values()).items() if n >= 5}
    return [(en.territories[c], a) for c, a in regions.items() if a in common]


@functools.cache
def lookup_items(family: str, locale: str = "") -> tuple[tuple[str, str], ...]:
    """A look-up task's sorted items (cached: babel parses each locale once)."""
    pairs = _locale_pairs(family, locale) if locale else _single_pairs(family)
    return tuple(names(pairs))


def _decimal_text(rng: random.Random) -> str:
    """A number up to 10^7 with 0-2 decimals, no trailing zero ("1234.5", "87")."""
    text = str(rng.randrange(10 ** rng.randint(1, 7)))
    places = rng.choice((0, 0, 1, 2))
    fraction = "".join(str(rng.randrange(10)) for _ in range(places)).rstrip("0")
    return f"{text}.{fraction}" if fraction else text


def _format_one(family: str, locale: str, rng: random.Random) -> tuple[str, str]:
    """One generated (input, output) of a formatting family."""
    if family == "date":
        day = datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(73000))
        return day.isoformat(), dates.format_date(day, "long", locale=locale)
    if family == "decimal":
        text = _decimal_text(rng)
        return text, numbers.format_decimal(Decimal(text), locale=locale)
    if family == "currency_format":
        amount, code = f"{rng.randrange(10 ** rng.randint(1, 6)) / 100:.2f}", rng.choice(CURRENCIES)
        return f"{amount} {code}", numbers.format_currency(Decimal(amount), code, locale=locale)
    if family == "compact":
        value = rng.randrange(10 ** rng.randint(4, 10))
        out = numbers.format_compact_decimal(value, locale=locale, fraction_digits=1)
        return str(value), out
    if family == "unit":
        unit, value = rng.choice(UNITS), rng.choice((rng.randint(0, 30), rng.randint(0, 1000)))
        out = units.format_unit(value, unit, locale=locale)
        # babel falls back to the unit's id where a locale has no pattern: not an answer
        return units.format_unit(value, unit, locale="en"), "" if unit in out else out
    value = rng.choice((str(rng.randint(0, 1000)), f"{rng.randint(0, 100)}.{rng.randint(0, 9)}"))
    return value, Locale.parse(locale).plural_form(Decimal(value))


def format_items(family: str, locale: str, rng: random.Random, size: int) -> list[tuple[str, str]]:
    """`size` distinct generated inputs with their formatted outputs, in drawing order;
    plural categories come from a larger pool, balanced (see `balanced`)."""
    wanted = MAX_SIZE if family == "plural_category" else size
    seen: dict[str, str] = {}
    for _ in range(wanted * 20):
        if len(seen) >= wanted:
            break
        source, target = _format_one(family, locale, rng)
        target = clean(target)
        if source not in seen and target:
            seen[source] = target
    items = list(seen.items())
    return balanced(items, rng, size) if family == "plural_category" else items


def balanced(items: list[tuple[str, str]], rng: random.Random, size: int) -> list[tuple[str, str]]:
    """Up to `size // labels` items of each label, shuffled: most numbers are "many" in
    Russian, and a plain sample would teach "many" as the answer."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for item in items:
        groups[item[1]].append(item)
    chosen = []
    for label in sorted(groups):
        chosen.extend(groups[label][: size // len(groups)])
    rng.shuffle(chosen)
    return chosen


def _families() -> Iterator[tuple[str, str]]:
    """(family, locale) of every task that may exist; "" is a locale-free family."""
    for locale in LOCALES:
        for family in (*LOOKUP_FAMILIES, *FORMAT_FAMILIES):
            yield family, locale
    yield from (("plural_category", locale) for locale in PLURAL_LOCALES)
    yield from ((family, "") for family in SINGLES)


@functools.cache
def _task_names() -> tuple[str, ...]:
    """Every task with at least MIN_EXAMPLES examples (zh has few unit patterns); plural
    categories are tried at the default size, as balancing keeps only a share of each."""
    result = []
    for family, locale in _families():
        name = f"{family}/{locale}" if locale else family
        if family in LOOKUP_FAMILIES or not locale:
            count = len(lookup_items(family, locale))
        else:
            size = DEFAULTS["size"] if family == "plural_category" else MIN_EXAMPLES
            count = len(format_items(family, locale, random.Random(name), size))
        if count >= MIN_EXAMPLES:
            result.append(name)
    return tuple(sorted(result))


def list_tasks(cache: Path | None = None) -> list[str]:
    """Every task name (babel's data is installed, so `cache` is unused here)."""
    return list(_task_names())


def load_task(name: str, cache: Path | None = None) -> Task:
    """One task: `territory_name/fr`, `decimal/de?seed=2&size=500`."""
    base, params = split_params(name, DEFAULTS)
    if base not in _task_names():
        valid = ", ".join(_task_names()[:6])
        raise ValueError(f"no CLDR task {base!r}; e.g. {valid} (see list_tasks())")
    family, _, locale = base.partition("/")
    size = max(1, min(int(params["size"]), MAX_SIZE))
    key = GeneratedKey("cldr", base, params, babel.__version__)
    examples = cached(key, _maker(family, locale, key, size), size, cache)
    instruction = INSTRUCTIONS.get(family, "{locale}").format(locale=_english(locale))
    return Task(f"cldr:{name}", examples, instruction if locale else None)


def _maker(family: str, locale: str, key: GeneratedKey, size: int) -> Callable:
    """What `cached` calls to make the examples the first time."""

    def make() -> Iterator[TaskExample]:
        rng = sampler(key)
        if family in LOOKUP_FAMILIES or not locale:
            items = lookup_items(family, locale)
            chosen = rng.sample(items, min(size, len(items)))
        else:
            chosen = format_items(family, locale, rng, size)
        return (TaskExample(source, target) for source, target in chosen)

    return make


def _english(locale: str) -> str:
    """ "French" for "fr": the instruction names the target language."""
    return Locale("en").languages.get(locale, locale) if locale else ""
