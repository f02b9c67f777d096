"""The user's side: the prodseg command line, sample data, job submission."""
