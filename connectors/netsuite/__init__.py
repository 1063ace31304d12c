"""NetSuite (ERP of the US entity): SuiteTalk REST web services, the record API and SuiteQL."""
