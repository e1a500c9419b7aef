"""Rendering against hand-built expectations (char tokenizer), then the same invariants on the
real SmolLM2 tokenizer."""

from __future__ import annotations

import random

import pytest

from manyicl.prompting import (
    PLAIN,
    DemoSet,
    Example,
    ExampleSpan,
    PromptFormat,
    chat_format,
    fill,
    is_canonical,
    render,
)

from chartok import BOS, SPECIALS, CharTokenizer, ids

SPECIAL_FMT = PromptFormat(
    name="special",
    header="<s>",
    instruction="<s>{instruction}<e>",
    input="<u>{input}<e><a>",
    output="{output}<e>",
    stop=["<e>"],
    add_special_prefix=False,
)
U, A, E, S = SPECIALS["<u>"], SPECIALS["<a>"], SPECIALS["<e>"], SPECIALS["<s>"]

# (format, demos, instruction, query) -> (ids, header_len, spans)
# fmt: off
RENDER_TABLE = [
    pytest.param(
        PLAIN, [("a", "b")], None, "c",
        ids("Input: a\nOutput: b\n\nInput: c\nOutput:", bos=True), 1, [(1, 17, 21)],
        id="plain-one-shot",
    ),
    pytest.param(
        PLAIN, [("a", "b"), ("xy", "z")], "Hi", None,
        ids("Hi\n\nInput: a\nOutput: b\n\nInput: xy\nOutput: z\n\n", bos=True), 5,
        [(5, 21, 25), (25, 42, 46)],
        id="plain-instruction-no-query",
    ),
    pytest.param(
        PLAIN, [], None, "q",
        ids("Input: q\nOutput:", bos=True), 1, [],
        id="plain-zero-shot",
    ),
    pytest.param(
        SPECIAL_FMT, [("a", "b")], None, "c",
        [S, U, *ids("a"), E, A, *ids("b"), E, U, *ids("c"), E, A], 1, [(1, 5, 7)],
        id="special-tokens",
    ),
    pytest.param(
        SPECIAL_FMT, [("<e>", "ok")], "do", None,
        [S, *ids("do"), E, U, *ids("<e>"), E, A, *ids("ok"), E], 4, [(4, 10, 13)],
        id="special-string-in-content-stays-text",
    ),
]
# fmt: on


@pytest.mark.parametrize("fmt,pairs,instruction,query,want_ids,header_len,spans", RENDER_TABLE)
def test_render_table(fmt, pairs, instruction, query, want_ids, header_len, spans):
    tok = CharTokenizer()
    examples = [Example(input=i, output=o) for i, o in pairs]
    demos = DemoSet(examples=examples, instruction=instruction) if examples else examples
    r = render(fmt, tok, demos, query)
    assert r.token_ids == want_ids
    assert r.header_len == header_len
    assert r.examples == tuple(ExampleSpan(*s) for s in spans)
    assert r.demo_block_end == (spans[-1][2] if spans else header_len)
    for (a, b), (_, out) in zip(r.answer_spans, pairs, strict=True):
        assert out in tok.decode(r.token_ids[a:b])


# template, values -> the pieces handed to the tokenizer, in order
# fmt: off
FILL_TABLE = [
    ("Input: {input}\nOutput:", {"input": "x"},
     [("template", "Input:"), ("text", " x"), ("template", "\nOutput:")]),
    (" {output}\n\n", {"output": "yes"}, [("text", " yes"), ("template", "\n\n")]),
    ("{output}<e>", {"output": "yes"}, [("text", "yes"), ("template", "<e>")]),
    ("Q:{input}", {"input": "x"}, [("template", "Q:"), ("text", "x")]),
    ("Q:  {input}", {"input": "x"}, [("template", "Q: "), ("text", " x")]),
    ("{instruction}\n\n", {"instruction": ""}, [("template", "\n\n")]),
]
# fmt: on


@pytest.mark.parametrize("template,values,pieces", FILL_TABLE)
def test_fill_moves_a_leading_space_into_the_content(template, values, pieces):
    tok = CharTokenizer()
    out = fill(template, tok, **values)
    assert tok.calls == pieces
    assert tok.decode(out) == template.format(**values)


def test_a_piece_ending_in_whitespace_is_tokenised_before_its_follower():
    tok = CharTokenizer()
    out = fill(" {output}\n\n", tok, "Input:", output="b")
    assert tok.calls == [("text", " b"), ("template", "\n\nInput:"), ("template", "Input:")]
    assert out == ids(" b\n\n")


def test_no_special_prefix_when_the_tokenizer_has_none():
    r = render(PLAIN, CharTokenizer(bos=False), [Example(input="a", output="b")])
    assert r.token_ids[0] != BOS and r.header_len == 0


def _random_text(rng: random.Random, n: int) -> str:
    words = ["the", "cat", "Paris", "42", "3.5", "don't", "naïve", "😀", "x+y=z", "(a)", "é"]
    seps = [" ", " ", " ", ", ", "\n", "  ", "\t"]
    return "".join(rng.choice(words) + rng.choice(seps) for _ in range(n)).strip()


def _demo_set(rng: random.Random, k: int) -> DemoSet:
    return DemoSet(
        examples=[
            Example(input=_random_text(rng, 8), output=_random_text(rng, 2)) for _ in range(k)
        ],
        instruction="Answer the question.",
    )


@pytest.fixture(params=["plain", "chat"])
def real_format(request, smollm2_hf_tokenizer):
    return PLAIN if request.param == "plain" else chat_format(smollm2_hf_tokenizer)


def test_demo_block_is_a_stable_prefix_on_the_real_tokenizer(smollm2_tok, real_format):
    rng = random.Random(0)
    demos = _demo_set(rng, 12)
    base = render(real_format, smollm2_tok, demos, "first query")
    block = base.token_ids[: base.demo_block_end]
    for _ in range(50):
        q = _random_text(rng, rng.randint(0, 12))
        r = render(real_format, smollm2_tok, demos, q)
        assert r.token_ids[: r.demo_block_end] == block
        assert r.examples == base.examples


def test_answer_spans_decode_back_on_the_real_tokenizer(smollm2_tok, real_format):
    rng = random.Random(1)
    demos = _demo_set(rng, 20)
    r = render(real_format, smollm2_tok, demos, "q")
    for (a, b), ex in zip(r.answer_spans, demos.examples, strict=True):
        want = real_format.output.format(output=ex.output)
        assert smollm2_tok.decode(r.token_ids[a:b]) == want
    whole = smollm2_tok.decode(r.token_ids)
    assert whole.endswith(real_format.input.format(input="q"))


def test_segment_ids_equal_whole_string_ids_on_the_real_tokenizer(smollm2_tok, real_format):
    # The boundary rule makes the presets canonical on ordinary text: a client sending the
    # rendered string to plain vLLM gets exactly the tokens the server would send.
    rng = random.Random(2)
    for _ in range(20):
        r = render(real_format, smollm2_tok, _demo_set(rng, 5), _random_text(rng, 6))
        assert is_canonical(smollm2_tok, r.token_ids)


def test_chat_format_renders_what_the_chat_template_renders(smollm2_hf_tokenizer, smollm2_tok):
    fmt = chat_format(smollm2_hf_tokenizer)
    demos = _demo_set(random.Random(3), 3)
    messages = [{"role": "system", "content": demos.instruction}]
    for ex in demos.examples:
        messages += [
            {"role": "user", "content": ex.input},
            {"role": "assistant", "content": ex.output},
        ]
    messages.append({"role": "user", "content": "final"})
    want = smollm2_hf_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert smollm2_tok.decode(render(fmt, smollm2_tok, demos, "final").token_ids) == want
