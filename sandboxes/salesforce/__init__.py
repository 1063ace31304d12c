"""A Salesforce stand-in: REST API, OAuth token endpoint, outbound messages, fault injection."""
