# The README's two commands, for people who have make.
.PHONY: run test bench
run:
	sh packaging/run.sh
test:
	sh packaging/test.sh
bench:
	.venv/bin/python benchmarks/poll.py && .venv/bin/python benchmarks/history.py && \
	.venv/bin/python benchmarks/ui.py && .venv/bin/python benchmarks/sources.py && \
	.venv/bin/python benchmarks/health.py && .venv/bin/python benchmarks/channels.py && \
	.venv/bin/python benchmarks/holds.py
