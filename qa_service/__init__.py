"""Real-time, moderated, multilingual audience Q&A for live broadcasts."""

__version__ = "0.1.0"
