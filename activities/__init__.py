"""Activities: thin adapters from workflows to connectors and the ledger."""
