"""Celery app and task definitions: reference, per-target matching, finalisation.

Thin: the work itself is in ``prodseg.workers.plan.steps``. Importing this package does not
import torch; the models are built in the worker's child process on its first task.
"""
