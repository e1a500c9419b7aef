# The README's two commands are `make serve` (the main job) and `make test`.
.PHONY: setup test lint serve model
ADAPTER ?=

setup:
	scripts/setup.sh

test: setup
	.venv/bin/python -m pytest -q

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

model: setup
	.venv/bin/manyicl-model --validate

serve: setup
	.venv/bin/manyicl-serve $(if $(ADAPTER),--adapter $(ADAPTER),) --merge-lora --max-model-len 8192
