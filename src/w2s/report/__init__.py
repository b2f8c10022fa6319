"""The report: the HTML page of charts and tables, and the provenance of every number on it."""
