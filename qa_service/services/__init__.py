"""Application services: one transaction each, events published after commit.

These are synchronous (SQLModel sessions); the async edges run them in a
worker thread.  Each function takes a :class:`Context` and returns plain data.
"""
