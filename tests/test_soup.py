"""`manyicl-finetune soup`: the stacked factors reproduce the weighted mean of the members'
deltas exactly (hand-built table), and a soup of two real adapters, loaded by PEFT, equals the
base plus the mean of what each member adds; bad input exits with a reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from manyicl.artifacts import sha256_file
from manyicl.finetune.cli import main as finetune_main
from manyicl.finetune.config import FinetuneConfig
from manyicl.finetune.soup import SoupConfig, stack_deltas, truncate_deltas
from manyicl.finetune.trainer import train
from manyicl.manifest import read_manifest

A, B = "m.q_proj.lora_A.weight", "m.q_proj.lora_B.weight"
_t = torch.tensor


# (members as (A, B) pairs, per-member scale, the delta B @ A of the soup)
STACK_TABLE = [
    # one member: the delta is its own, times its scale
    ([(_t([[1.0, 2.0]]), _t([[1.0], [0.0]]))], [2.0], _t([[2.0, 4.0], [0.0, 0.0]])),
    # equal halves of a delta and its negation cancel
    (
        [(_t([[1.0, 0.0]]), _t([[3.0]])), (_t([[1.0, 0.0]]), _t([[-3.0]]))],
        [0.5, 0.5],
        _t([[0.0, 0.0]]),
    ),
    # different ranks (1 and 2) and scales: 0.25 * [1,1]x[2,0] + 0.75 * I
    (
        [
            (_t([[2.0, 0.0]]), _t([[1.0], [1.0]])),
            (_t([[1.0, 0.0], [0.0, 1.0]]), _t([[1.0, 0.0], [0.0, 1.0]])),
        ],
        [0.25, 0.75],
        _t([[1.25, 0.0], [0.5, 0.75]]),
    ),
]


@pytest.mark.parametrize("members,scales,delta", STACK_TABLE)
def test_stacked_factors_give_the_weighted_sum_of_deltas(members, scales, delta):
    out = stack_deltas([{A: a, B: b} for a, b in members], scales)
    assert out[A].shape[0] == sum(a.shape[0] for a, _ in members)  # ranks add up
    torch.testing.assert_close(out[B] @ out[A], delta)


@pytest.mark.parametrize(
    "members,message",
    [
        ([{A: _t([[1.0]]), B: _t([[1.0]])}, {A: _t([[1.0]])}], "other modules"),
        ([{"m.bias": _t([1.0])}, {"m.bias": _t([1.0])}], "only plain LoRA factors"),
    ],
)
def test_stacking_refuses_what_it_cannot_average(members, message):
    with pytest.raises(ValueError, match=message):
        stack_deltas(members, [0.5, 0.5])


# (A, B, rank kept, the delta B @ A after truncation, share of the squared norm kept)
TRUNCATE_TABLE = [
    # diag(3, 2, 1) to rank 1: the largest direction stays, 9 of 14 of the energy
    (torch.eye(3), torch.diag(_t([3.0, 2.0, 1.0])), 1, torch.diag(_t([3.0, 0.0, 0.0])), 9 / 14),
    # a rank-3 stack whose delta has rank 2 loses nothing at rank 2
    (
        _t([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        _t([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]),
        2,
        _t([[1.0, 0.0], [0.0, 2.0]]),
        1.0,
    ),
    # a 1-row delta has rank 1: rank 2 is zero-padded, still exact
    (_t([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), _t([[1.0, 1.0, 1.0]]), 2, _t([[2.0, 2.0]]), 1.0),
    # a zero delta stays zero
    (torch.zeros(3, 2), torch.zeros(2, 3), 1, torch.zeros(2, 2), 1.0),
]


@pytest.mark.parametrize("a,b,rank,delta,kept", TRUNCATE_TABLE)
def test_truncation_keeps_the_best_low_rank_delta(a, b, rank, delta, kept):
    out, shares = truncate_deltas({A: a, B: b}, rank)
    assert out[A].shape == (rank, a.shape[1]) and out[B].shape == (b.shape[0], rank)
    torch.testing.assert_close(out[B] @ out[A], delta)
    assert shares == [pytest.approx(kept)]


def test_truncation_refuses_non_finite_weights():
    with pytest.raises(ValueError, match="not finite"):
        truncate_deltas({A: _t([[float("nan")]]), B: _t([[1.0]])}, 1)


def _adapter(out: Path, model: str, mixture: str, seed: int, rank: int, alpha: int) -> Path:
    train(
        FinetuneConfig(
            out=out, model=model, mixture=Path(mixture), max_seq_len=192, max_steps=3,
            grad_accum=1, lr=2e-2, warmup_steps=0, eval_every=0, save_every=0,
            eval_sequences=2, lora_r=rank, lora_alpha=alpha, seed=seed,
            gradient_checkpointing=False,
        )
    )  # fmt: skip
    return out


def _merged(model: str, adapter: Path) -> dict[str, torch.Tensor]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    return PeftModel.from_pretrained(base, adapter).merge_and_unload().state_dict()


def test_a_soup_of_two_trained_adapters_is_the_mean_of_their_deltas(
    tmp_path, tiny_llama_dir, toy_mixture, capsys
):
    from transformers import AutoModelForCausalLM

    # different ranks and alpha/r (2 and 1): each member's own scale must be used
    a = _adapter(tmp_path / "a", tiny_llama_dir, toy_mixture, seed=1, rank=8, alpha=16)
    b = _adapter(tmp_path / "b", tiny_llama_dir, toy_mixture, seed=2, rank=4, alpha=4)
    args = [str(a), str(b), "--weights", "3,1", "--scale", "1.5"]
    finetune_main(["soup", "--out", str(tmp_path / "soup"), *args])
    assert "soup of 2 adapters" in capsys.readouterr().out
    finetune_main(["soup", "--out", str(tmp_path / "a2"), str(a), "--scale", "2"])
    assert "scaled adapter written" in capsys.readouterr().out
    finetune_main(["soup", "--out", str(tmp_path / "s5"), *args, "--rank", "5"])
    assert "truncated from rank 12 to 5" in capsys.readouterr().out

    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).state_dict()
    wa, wb, soup, a2, s5 = (
        _merged(tiny_llama_dir, tmp_path / p) for p in ("a", "b", "soup", "a2", "s5")
    )
    moved = [k for k in base if not torch.equal(wa[k], base[k])]
    assert moved and all(not torch.equal(wb[k], base[k]) for k in moved)  # both trained
    for k in base:
        want = base[k] + 1.5 * (0.75 * (wa[k] - base[k]) + 0.25 * (wb[k] - base[k]))
        torch.testing.assert_close(soup[k], want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a2[k], base[k] + 2 * (wa[k] - base[k]), rtol=1e-5, atol=1e-6)
    for k in moved:  # the rank-5 soup adds the best rank-5 approximation of the soup's delta
        u, s, vh = torch.linalg.svd((soup[k] - base[k]).double(), full_matrices=False)
        best = (u[:, :5] * s[:5] @ vh[:5]).float()
        torch.testing.assert_close(s5[k] - base[k], best, rtol=1e-4, atol=1e-5)

    manifest = read_manifest(tmp_path / "soup")
    assert manifest.lora["r"] == 12 and manifest.objective == "all-targets"
    members = manifest.training["soup"]
    assert [m["weight"] for m in members] == [1.125, 0.375]  # 1.5 x (3/4, 1/4)
    assert [m["sha256"] for m in members] == [
        sha256_file(p / "adapter_model.safetensors") for p in (a, b)
    ]
    assert manifest.tokens_trained == sum(m["tokens_trained"] for m in members)
    compressed = read_manifest(tmp_path / "s5")
    assert compressed.lora["r"] == 5 and compressed.training["svd"]["from_rank"] == 12
    assert 0 < compressed.training["svd"]["energy_kept_min"] < 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["{a}"], "give two or more"),
        (["{a}", "{b}", "--scale", "0"], "--scale must be in (0, 10]"),
        (["{a}", "{a}"], "named twice"),
        (["{a}", "{b}", "--weights", "1"], "--weights has 1 values for 2 adapters"),
        (["{a}", "{b}", "--weights", "1,-1"], "finite, >= 0, with a positive sum"),
        (["{a}", "{b}", "--weights", "nan,1"], "finite, >= 0, with a positive sum"),
        (["{a}", "{abs_a}"], "named twice"),
        (["{a}", "{b}", "--weights", "1,x"], "could not convert"),
        (["{a}", "{tmp}/nothing"], "no manyicl.json"),
        (["{a}", "{other}"], "objective differs"),
        (["{a}", "{other_base}"], "base model differs"),
        (["{a}", "{rslora}"], "rsLoRA are not supported"),
        (["{a}", "{corrupt}"], "manyicl-finetune soup: error:"),
        (["{a}", "{b}", "--rank", "0"], "--rank must be >= 1"),
        (["{a}", "{twin}", "--rank", "8"], "--rank 8 is not below the members' summed rank 8"),
        (["{a}", "--rank", "4"], "--rank 4 is not below the members' summed rank 4"),
    ],
)
def test_bad_soup_input_exits_with_a_reason(
    tmp_path_factory, tmp_path, tiny_llama_dir, toy_mixture, args, message, capsys
):
    a = tmp_path_factory.getbasetemp() / "soup-member"
    if not (a / "manyicl.json").is_file():
        _adapter(a, tiny_llama_dir, toy_mixture, seed=1, rank=4, alpha=8)
    manifest = json.loads((a / "manyicl.json").read_text())
    config = json.loads((a / "adapter_config.json").read_text())
    base = {**manifest["base_model"], "fingerprint": "0" * 16}
    names = {
        "other": _edited(a, tmp_path / "other", "manyicl.json", manifest, objective="last-target"),
        "other_base": _edited(a, tmp_path / "ob", "manyicl.json", manifest, base_model=base),
        "rslora": _edited(a, tmp_path / "rs", "adapter_config.json", config, use_rslora=True),
        "corrupt": _edited(a, tmp_path / "bad", "manyicl.json", manifest),
        "twin": _edited(a, tmp_path / "twin", "manyicl.json", manifest),
    }
    (names["corrupt"] / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    names.update(a=a, abs_a=a.resolve(), b=names["other"], tmp=tmp_path)
    argv = ["soup", "--out", str(tmp_path / "soup")] + [x.format(**names) for x in args]
    with pytest.raises(SystemExit) as e:
        finetune_main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "soup" / "adapter_model.safetensors").exists()


def test_out_may_not_be_a_member_however_it_is_spelled(tmp_path, capsys):
    member = tmp_path / "a"
    with pytest.raises(SystemExit):
        finetune_main(["soup", "--out", str(member.resolve()), str(member), str(tmp_path / "b")])
    assert "--out must not be one of the members" in capsys.readouterr().err


def test_a_soup_of_nothing_is_refused_from_python_too(tmp_path):
    with pytest.raises(ValueError, match="at least one adapter"):
        SoupConfig((), tmp_path / "soup")


def _edited(src: Path, dst: Path, name: str, data: dict, **changes) -> Path:
    """A copy of adapter `src` whose JSON file `name` has `changes`."""
    shutil.copytree(src, dst)
    (dst / name).write_text(json.dumps({**data, **changes}))
    return dst
