"""Celery: the app, the task and queue names, thin task bodies over ``workers.plan``,
live progress in Redis, preview replies and the worker launcher.

Importing this package does not import torch; the models are built in the worker's child
process on its first task.
"""
