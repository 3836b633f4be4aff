"""Storage: one async interface (:class:`Store`), a SQLite and a Redis implementation."""

from signalling.store.base import Store

__all__ = ["Store"]
