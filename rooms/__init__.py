"""Vestibule's domain core: sans-IO models and rules.

Nothing in this package performs I/O, logs or reads a clock: callers pass state
and ``now`` in and get decisions and events back.
"""
