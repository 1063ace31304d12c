"""TimeToBilling's concerns, one module each; `workflows.time_to_billing` puts them together in one run."""
