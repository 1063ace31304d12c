"""Workflows: the durable business processes. Deterministic orchestration and business rules only."""
