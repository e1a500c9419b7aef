"""The base model with a LoRA adapter, on one device, optionally under data parallelism."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a `torchrun` job (a single process: rank 0 of 1)."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @classmethod
    def from_env(cls) -> DistEnv:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        if world > 1 and not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world, local, device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_sum(self, value: float) -> float:
        """Sum of a number over all ranks."""
        if self.world == 1:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return float(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on a GPU that supports it, float32 otherwise (CPU bf16 training is slower
    here and less precise)."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"bfloat16": torch.bfloat16, "float32": torch.float32}[name]


def load_lora_model(
    model_path: str,
    dtype: torch.dtype,
    device: torch.device,
    lora: dict,
    gradient_checkpointing: bool,
):
    """The base model, frozen, with a fresh LoRA adapter (peft) on `device`.

    sdpa attention: DrICL's zero-shot pass passes a boolean 4D block mask, which sdpa honours.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=dtype, attn_implementation="sdpa"
    )
    model.config.use_cache = False
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))
    return model.to(device)


def wrap_ddp(model, env: DistEnv):
    """DistributedDataParallel over ranks; the model itself when there is one process."""
    if env.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [env.local_rank] if env.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
