"""Evaluation: held-out tasks scored at each shot count."""
