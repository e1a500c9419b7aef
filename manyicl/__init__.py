"""manyicl: one LoRA adapter trained for many-shot in-context learning, served with prefix caching.

The parts install under this namespace: `manyicl.prompting`, `manyicl.finetune`,
`manyicl.serve`, `manyicl.loadtests`, `manyicl.evaluate`.
"""

__version__ = "0.1.0"
