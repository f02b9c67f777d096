"""The job plan and its steps: what prodseg run and the Celery tasks both execute."""
