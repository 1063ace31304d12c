"""Business rules as pure, deterministic functions: safe to call from workflow code."""
