"""Training: one LoRA adapter with the many-shot all-targets objective (`manyicl-finetune`)."""
