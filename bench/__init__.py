"""The ps-sync benchmark: what durability costs against a plain script, and what happens when the firm
doubles.

`make bench` (or `python -m bench`) starts the stack, seeds a synthetic firm through
the vendors' APIs, runs the workloads and writes a Markdown table to `bench/results/`.
"""
