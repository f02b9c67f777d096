"""The catalog review page: a local web server, its page, re-runs with corrections."""
