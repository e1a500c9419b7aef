"""`manyicl-finetune soup`: one adapter whose weight delta is the weighted mean of several
adapters' deltas (a "model soup", Wortsman et al. 2022, applied to LoRA deltas).

Why exact and not averaged factors: a LoRA delta is s * B @ A, and the mean of products is not
the product of means. Stacking the members' factors, A = [A_1; ...; A_n] (rank r_1+...+r_n)
and B = [w_1 s_1 B_1, ..., w_n s_n B_n], gives B @ A = sum_i w_i s_i B_i @ A_i exactly; the
soup's own scale is 1 (lora_alpha = r). Its rank is the members' sum: `manyicl-eval` and
`manyicl-serve --merge-lora` fold it into the base, where rank costs nothing. `--rank R`
instead keeps each module's best rank-R approximation of the soup's delta (truncated SVD,
Eckart-Young): an adapter vLLM serves unmerged at the cost of one member.

manyicl-finetune soup --out runs/soup runs/a runs/b runs/c     # uniform weights
manyicl-finetune soup --out runs/a2 --scale 2 runs/a            # twice one adapter's delta
manyicl-finetune soup --out runs/s16 --rank 16 runs/a runs/b    # the soup, compressed to rank 16
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manyicl.cliargs import exits_on
from manyicl.manifest import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    AdapterManifest,
    read_manifest,
    write_manifest,
)

if TYPE_CHECKING:  # torch is imported where it is used: `soup --help` stays fast
    import torch


@dataclass(frozen=True)
class SoupConfig:
    members: tuple[Path, ...]
    out: Path
    weights: tuple[float, ...] | None = None  # None: 1/n each
    scale: float = 1.0  # times the mean delta: > 1 extrapolates (task arithmetic's lambda)
    rank: int | None = None  # None: the members' ranks summed (exact); else truncated SVD

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("give at least one adapter")
        if len(self.members) == 1 and self.scale == 1 and self.rank is None:
            raise ValueError("one adapter at --scale 1 is that adapter: give two or more")
        if self.rank is not None and self.rank < 1:
            raise ValueError("--rank must be >= 1")
        resolved = {p.resolve() for p in self.members}  # runs/a and /abs/runs/a are one
        if len(resolved) != len(self.members):
            raise ValueError("an adapter is named twice: give each member once (use --weights)")
        if self.weights is not None:
            if len(self.weights) != len(self.members):
                raise ValueError(
                    f"--weights has {len(self.weights)} values for {len(self.members)} adapters"
                )
            finite = all(math.isfinite(w) for w in self.weights)
            if not finite or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("--weights must be finite, >= 0, with a positive sum")
        if not 0 < self.scale <= 10:
            raise ValueError("--scale must be in (0, 10]")
        if self.out.resolve() in resolved:
            raise ValueError("--out must not be one of the members")

    def member_weights(self) -> list[float]:
        raw = self.weights or (1.0,) * len(self.members)
        return [self.scale * w / sum(raw) for w in raw]


def stack_deltas(
    members: list[dict[str, torch.Tensor]], scales: list[float]
) -> dict[str, torch.Tensor]:
    """The soup's LoRA factors: lora_A stacked along rank, lora_B side by side, each member's
    B multiplied by its (weight x scale). Every member must hold the same modules."""
    import torch

    keys = set(members[0])
    for i, m in enumerate(members[1:], 1):
        if set(m) != keys:
            raise ValueError(f"adapter {i} targets other modules than adapter 0")
    out: dict[str, torch.Tensor] = {}
    for key in sorted(keys):
        if ".lora_A." in key:  # A_i: (r_i, d_in) -> (sum r, d_in)
            out[key] = torch.cat([m[key].float() for m in members], dim=0)
        elif ".lora_B." in key:  # B_i: (d_out, r_i) -> (d_out, sum r)
            scaled = [s * m[key].float() for m, s in zip(members, scales, strict=True)]
            out[key] = torch.cat(scaled, dim=1)
        else:
            raise ValueError(f"{key}: only plain LoRA factors can be souped")
    return out


def truncate_deltas(
    factors: dict[str, torch.Tensor], rank: int, progress: bool = False
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Each module's delta B @ A replaced by its best rank-`rank` approximation, split evenly
    (sqrt of the singular values) between new factors; with each module's share of the delta's
    squared Frobenius norm that is kept. Zero-padded when a module's delta has lower rank."""
    import torch
    from tqdm import tqdm

    out: dict[str, torch.Tensor] = {}
    kept = []
    keys = sorted(k for k in factors if ".lora_A." in k)
    for key_a in tqdm(keys, desc="truncating", unit="module", disable=not progress):
        key_b = key_a.replace(".lora_A.", ".lora_B.")
        a, b = factors[key_a].double(), factors[key_b].double()  # (k, d_in), (d_out, k)
        if not (a.isfinite().all() and b.isfinite().all()):
            raise ValueError(f"{key_a}: weights are not finite; cannot truncate them")
        # B @ A = qb (rb @ ra^T) qa^T: the SVD of a small (<= k x k) core, not of d_out x d_in
        qb, rb = torch.linalg.qr(b)  # (d_out, m_b), (m_b, k)
        qa, ra = torch.linalg.qr(a.T)  # (d_in, m_a), (m_a, k)
        u, s, vh = torch.linalg.svd(rb @ ra.T, full_matrices=False)  # s: (min(m_b, m_a),)
        n = min(rank, s.numel())
        root = s[:n].sqrt()
        new_b = torch.zeros(b.shape[0], rank, dtype=b.dtype)  # (d_out, rank)
        new_a = torch.zeros(rank, a.shape[1], dtype=a.dtype)  # (rank, d_in)
        new_b[:, :n] = qb @ u[:, :n] * root
        new_a[:n] = root[:, None] * vh[:n] @ qa.T
        out[key_a], out[key_b] = new_a.float(), new_b.float()
        total = float((s**2).sum())
        kept.append(float((s[:n] ** 2).sum()) / total if total > 0 else 1.0)
    return out, kept


def _lora_config(path: Path) -> dict[str, Any]:
    config = json.loads((path / CONFIG_FILE).read_text())
    if config.get("peft_type") != "LORA" or config.get("use_dora"):
        raise ValueError(f"{path}: only plain LoRA adapters can be souped")
    if config.get("rank_pattern") or config.get("alpha_pattern") or config.get("use_rslora"):
        raise ValueError(f"{path}: per-module ranks, alphas or rsLoRA are not supported")
    rank, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(rank, int) or not isinstance(alpha, int | float) or rank < 1:
        raise ValueError(f"{path / CONFIG_FILE}: no LoRA rank 'r' and 'lora_alpha'")
    return config


def _check_compatible(cfg: SoupConfig, manifests: list[AdapterManifest]) -> None:
    """Members must share what serving depends on: base model, prompt format, objective."""
    first = manifests[0]
    for path, m in zip(cfg.members[1:], manifests[1:], strict=True):
        for what, a, b in (
            ("base model", m.base_model.fingerprint, first.base_model.fingerprint),
            ("prompt format", m.prompt_format, first.prompt_format),
            ("objective", m.objective, first.objective),
        ):
            if a != b:
                raise ValueError(f"{path}: its {what} differs from {cfg.members[0]}'s")


def write_soup(cfg: SoupConfig) -> AdapterManifest:
    """Write the soup adapter to cfg.out; returns its manifest (members and weights in
    `training["soup"]`). Every member is read (once: its bytes are both hashed and loaded)
    before anything is written."""
    from safetensors.torch import load, save_file

    manifests = [read_manifest(p) for p in cfg.members]
    _check_compatible(cfg, manifests)
    weights = cfg.member_weights()
    configs = [_lora_config(p) for p in cfg.members]
    rank = sum(c["r"] for c in configs)
    if cfg.rank is not None and cfg.rank >= rank:  # refused before any weights are read
        raise ValueError(f"--rank {cfg.rank} is not below the members' summed rank {rank}")
    scales = [w * c["lora_alpha"] / c["r"] for w, c in zip(weights, configs, strict=True)]
    raw = [(p / WEIGHTS_FILE).read_bytes() for p in cfg.members]
    factors = stack_deltas([load(data) for data in raw], scales)
    svd: dict[str, float] = {}
    if cfg.rank is not None:
        factors, kept = truncate_deltas(factors, cfg.rank, progress=True)
        svd = {"from_rank": rank, "energy_kept_mean": sum(kept) / len(kept)}
        svd["energy_kept_min"] = min(kept)
        rank = cfg.rank
    hashes = [hashlib.sha256(data).hexdigest() for data in raw]
    manifest = _soup_manifest(cfg, manifests, weights, hashes, rank, svd)
    cfg.out.mkdir(parents=True, exist_ok=True)
    save_file(factors, cfg.out / WEIGHTS_FILE)
    config = {**configs[0], "r": rank, "lora_alpha": rank, "lora_dropout": 0.0}
    (cfg.out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    write_manifest(cfg.out, manifest)
    readme = cfg.members[0] / "README.md"
    if readme.is_file():  # the model card peft writes: keeps the folder self-describing
        shutil.copyfile(readme, cfg.out / "README.md")
    return manifest


def _soup_manifest(
    cfg: SoupConfig,
    manifests: list[AdapterManifest],
    weights: list[float],
    hashes: list[str],
    rank: int,
    svd: dict[str, float],
) -> AdapterManifest:
    """The first member's manifest (base model, prompt format, objective: shared by all), with
    the soup's rank, its members (path, weights' sha256, weight, steps, tokens, seed, training
    config) and any SVD truncation (rank before, energy kept) as `training`, and no metrics of
    its own. `seed` stays the first member's (the soup has none); `loss_norm` reads "mixed"
    when members differ."""
    members = [
        {
            "adapter": str(p),
            "sha256": sha,
            "weight": w,
            "steps": m.steps,
            "tokens_trained": m.tokens_trained,
            "seed": m.seed,
            "training": m.training,
        }
        for p, w, sha, m in zip(cfg.members, weights, hashes, manifests, strict=True)
    ]
    first, norms = manifests[0], {m.loss_norm for m in manifests}
    return first.model_copy(
        update={
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "max_seq_len": max(m.max_seq_len for m in manifests),
            "loss_norm": norms.pop() if len(norms) == 1 else "mixed",
            "lora": {**first.lora, "r": rank, "lora_alpha": rank},
            "training": {"soup": members, **({"svd": svd} if svd else {})},
            "steps": sum(m.steps for m in manifests),
            "tokens_trained": sum(m.tokens_trained for m in manifests),
            "metrics": {},
        }
    )


def parse_soup_config(argv: list[str] | None = None) -> SoupConfig:
    parser = argparse.ArgumentParser(
        prog="manyicl-finetune soup",
        description="Average several adapters of one base model into one adapter: its "
        "weight delta is the weighted mean of theirs, exactly (ranks add up); --scale "
        "multiplies it (one adapter: its delta scaled); --rank truncates it by SVD.",
    )
    parser.add_argument("members", nargs="+", type=Path, help="adapter folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for the soup adapter")
    parser.add_argument(
        "--weights", default=None, help="comma-separated member weights (default: equal)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the mean delta by this; > 1 extrapolates along it (default: 1)",
    )
    parser.add_argument(
        "--rank",
        type=int,
        default=None,
        help="keep each module's best rank-R approximation of the delta (truncated SVD; "
        "default: exact, rank = the members' ranks summed; vLLM serves ranks up to 512 "
        "unmerged, and its cost grows with rank)",
    )
    args = parser.parse_args(argv)
    try:
        weights = None if args.weights is None else tuple(map(float, args.weights.split(",")))
        return SoupConfig(tuple(args.members), args.out, weights, args.scale, args.rank)
    except ValueError as e:
        parser.error(str(e))
        raise  # unreachable: parser.error exits


def main(argv: list[str] | None = None) -> None:
    from safetensors import SafetensorError  # a corrupt weights file

    cfg = parse_soup_config(argv)
    # OSError: missing files, --out a file
    with exits_on("manyicl-finetune soup", OSError, ValueError, SafetensorError):
        manifest = write_soup(cfg)
    members = manifest.training["soup"]
    for m in members:
        print(f"{m['weight']:.3f}  {m['adapter']}")
    if svd := manifest.training.get("svd"):
        print(
            f"truncated from rank {svd['from_rank']} to {cfg.rank}: each module keeps "
            f"{svd['energy_kept_mean']:.1%} of its delta's energy on average "
            f"(least: {svd['energy_kept_min']:.1%})"
        )
    n = len(members)
    what = f"soup of {n} adapters" if n > 1 else "adapter" if cfg.scale == 1 else "scaled adapter"
    print(f"{what} written to {cfg.out}")
