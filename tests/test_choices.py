"""Choices as token tries (pure, hand-built), and label-constrained answers on the server."""

from __future__ import annotations

import math

import pytest

from manyicl.choices import choice_probabilities, prefixes

# choices -> proper prefix -> tokens that can follow it
PREFIX_TABLE = [
    ([[5, 9], [6, 9]], {(): [5, 6], (5,): [9], (6,): [9]}),
    (
        [[7, 1, 9], [7, 2, 9], [8, 9]],
        {(): [7, 8], (7,): [1, 2], (7, 1): [9], (7, 2): [9], (8,): [9]},
    ),
    ([[3]], {(): [3]}),
]


@pytest.mark.parametrize("choices,want", PREFIX_TABLE)
def test_prefixes_table(choices, want):
    assert prefixes(choices) == want


def test_choice_probabilities_multiply_along_each_choice_and_normalise():
    lp = math.log
    known = {(): {5: lp(0.5), 6: lp(0.4)}, (5,): {9: lp(0.5)}, (6,): {9: lp(0.99)}}
    p5, p6 = choice_probabilities([[5, 9], [6, 9]], known)
    # 0.5 * 0.5 = 0.25 against 0.4 * 0.99 = 0.396: the answer's end counts too
    assert p5 == pytest.approx(0.25 / 0.646) and p6 == pytest.approx(0.396 / 0.646)
    assert choice_probabilities([[3]], {(): {3: -5.0}}) == [1.0]


DEMOS = [
    {"input": t, "output": lab}
    for t, lab in [
        ("I loved it", "positive"),
        ("Awful", "negative"),
        ("Great fun", "positive"),
        ("Boring and long", "negative"),
        ("A joy", "positive"),
        ("Terrible", "negative"),
    ]
]


@pytest.mark.slow
def test_answer_choices_pick_a_label_with_probabilities(http):
    body = {
        "model": "manyicl",
        "prompt": "What a delight",
        "demonstrations": DEMOS,
        "answer_choices": "labels",
        "temperature": 0,
    }
    r = http.post("/v1/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    probs = out["manyicl"]["prompts"][0]["choice_probabilities"]
    assert set(probs) == {"positive", "negative"} and sum(probs.values()) == pytest.approx(1.0)
    assert out["choices"][0]["text"].strip() in probs
    listed = http.post("/v1/completions", json={**body, "answer_choices": ["yes", "no", "maybe"]})
    assert set(listed.json()["manyicl"]["prompts"][0]["choice_probabilities"]) == {
        "yes",
        "no",
        "maybe",
    }
    streamed = http.post("/v1/completions", json={**body, "stream": True})
    assert out["choices"][0]["text"] in streamed.text and streamed.text.endswith("[DONE]\n\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra,param",
    [
        ({"demonstrations": None}, "answer_choices"),
        ({"n": 2}, "n"),
        ({"logprobs": 1}, "logprobs"),
        ({"answer_choices": []}, "answer_choices"),
    ],
)
def test_answer_choices_refusals(http, extra, param):
    body = {"model": "manyicl", "prompt": "x", "demonstrations": DEMOS, "answer_choices": "labels"}
    body = {k: v for k, v in {**body, **extra}.items() if v is not None}
    r = http.post("/v1/completions", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
