"""ps-sync: durable CRM / PSA / ERP integration on Temporal."""
