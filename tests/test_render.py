"""Rendering against hand-built expectations (char tokenizer), then the same invariants on the
real SmolLM2 tokenizer."""

from __future__ import annotations

import random

import pytest

from manyicl.prompting import (
    PLAIN,
    BlockPadding,
    DemoSet,
    Example,
    ExampleSpan,
    PromptFormat,
    block_padding,
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
UNALIGNED = PLAIN.model_copy(update={"align": 0})
# The demo block ends on a multiple of 8; k filler tokens: the first k - 1 of "ab.." then "|".
ALIGN8 = PLAIN.model_copy(update={"align": 8, "pad": "ab", "pad_end": "|"})

# (format, demos, instruction, query, block size) -> (ids, header_len, spans, demo block end)
# fmt: off
RENDER_TABLE = [
    pytest.param(
        UNALIGNED, [("a", "b")], None, "c", None,
        ids("Input: a\nOutput: b\n\nInput: c\nOutput:", bos=True), 1, [(1, 17, 21)], 21,
        id="plain-one-shot",
    ),
    pytest.param(
        UNALIGNED, [("a", "b"), ("xy", "z")], "Hi", None, None,
        ids("Hi\n\nInput: a\nOutput: b\n\nInput: xy\nOutput: z\n\n", bos=True), 5,
        [(5, 21, 25), (25, 42, 46)], 46,
        id="plain-instruction-no-query",
    ),
    pytest.param(
        UNALIGNED, [], None, "q", None,
        ids("Input: q\nOutput:", bos=True), 1, [], 1,
        id="plain-zero-shot",
    ),
    pytest.param(
        ALIGN8, [("a", "b")], None, "c", None,
        ids("ab|Input: a\nOutput: b\n\nInput: c\nOutput:", bos=True), 1,
        [(4, 20, 24)], 24,
        id="aligned-filler-after-the-header",
    ),
    pytest.param(
        ALIGN8, [("a", "b")], None, "c", 16,
        ids("ababababab|Input: a\nOutput: b\n\nInput: c\nOutput:", bos=True), 1,
        [(12, 28, 32)], 32,
        id="aligned-to-a-larger-kv-block",
    ),
    pytest.param(
        ALIGN8, [("a", "b"), ("xy", "z")], "Hi", None, None,
        ids("Hi\n\na|Input: a\nOutput: b\n\nInput: xy\nOutput: z\n\n", bos=True),
        5, [(7, 23, 27), (27, 44, 48)], 48,
        id="aligned-block-without-query",
    ),
    pytest.param(
        ALIGN8, [], None, "q", None,
        ids("Input: q\nOutput:", bos=True), 1, [], 1,
        id="aligned-zero-shot-has-no-filler",
    ),
    pytest.param(
        SPECIAL_FMT, [("a", "b")], None, "c", None,
        [S, U, *ids("a"), E, A, *ids("b"), E, U, *ids("c"), E, A], 1, [(1, 5, 7)], 7,
        id="special-tokens",
    ),
    pytest.param(
        SPECIAL_FMT, [("<e>", "ok")], "do", None, None,
        [S, *ids("do"), E, U, *ids("<e>"), E, A, *ids("ok"), E], 4, [(4, 10, 13)], 13,
        id="special-string-in-content-stays-text",
    ),
]
# fmt: on


@pytest.mark.parametrize(
    "fmt,pairs,instruction,query,block_size,want_ids,header_len,spans,block_end", RENDER_TABLE
)
def test_render_table(
    fmt, pairs, instruction, query, block_size, want_ids, header_len, spans, block_end
):
    tok = CharTokenizer()
    examples = [Example(input=i, output=o) for i, o in pairs]
    demos = DemoSet(examples=examples, instruction=instruction) if examples else examples
    r = render(fmt, tok, demos, query, block_size)
    assert r.token_ids == want_ids
    assert r.header_len == header_len
    assert r.examples == tuple(ExampleSpan(*s) for s in spans)
    assert r.demo_block_end == block_end
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


# (align, block size) -> the multiple; 0 align: no padding
@pytest.mark.parametrize(
    "align,block_size,multiple",
    [
        (0, None, None),
        (0, 32, None),
        (128, None, 128),
        (128, 32, 128),
        (32, 128, 128),
        (48, 32, 96),
    ],
)
def test_block_padding_multiple(align, block_size, multiple):
    fmt = PLAIN.model_copy(update={"align": align, "pad_end": "\n"})
    padding = block_padding(fmt, CharTokenizer(), block_size)
    assert (padding.multiple if padding else None) == multiple
    if padding:
        assert [padding.count(n) for n in (0, 1, multiple - 1, multiple)] == [0, multiple - 1, 1, 0]
        text = [ord(c) for c in fmt.pad]
        assert padding.tokens(0) == [] and padding.tokens(1) == [ord("\n")]
        assert padding.tokens(3) == [*text[:2], ord("\n")]


def test_a_filler_of_more_than_one_token_is_refused():
    fmt = PLAIN.model_copy(update={"align": 8, "pad_end": "ab"})
    with pytest.raises(ValueError, match="exactly one token"):
        block_padding(fmt, CharTokenizer())
    padding = BlockPadding(4, (7, 8), 9)
    assert padding.reserve == 3 and padding.tokens(6) == [7, 8, 7, 8, 7, 9]


def test_no_special_prefix_when_the_tokenizer_has_none():
    r = render(UNALIGNED, CharTokenizer(bos=False), [Example(input="a", output="b")])
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
    # rendered string to plain vLLM gets exactly the tokens the server would send. Only the
    # filler is not (a run of newlines tokenises as longer newline tokens).
    rng = random.Random(2)
    unaligned = real_format.model_copy(update={"align": 0})
    for _ in range(20):
        demos, query = _demo_set(rng, 5), _random_text(rng, 6)
        r = render(unaligned, smollm2_tok, demos, query)
        assert is_canonical(smollm2_tok, r.token_ids)
        aligned = render(real_format, smollm2_tok, demos, query)
        assert aligned.demo_block_end % real_format.align == 0
        start, end = aligned.header_len, aligned.header_len + aligned.pad_len
        filler = smollm2_tok.decode(aligned.token_ids[start:end])
        assert filler.endswith(real_format.pad_end)
        assert (real_format.pad * 8).startswith(filler[: -len(real_format.pad_end)])
        assert aligned.token_ids[:start] + aligned.token_ids[end:] == r.token_ids


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
