"""Processes: jobs in the store, the scheduler that runs them in worker processes with
resource accounting, heartbeats, retries and cancellation.

The kernel knows nothing about training: a job names its handler as a dotted path
(`package.module:function`) that the worker imports, so the packages below it
(`train`, later `adapt`) register job kinds without the kernel importing them.
"""
