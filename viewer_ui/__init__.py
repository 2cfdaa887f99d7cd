"""The public viewer page and its locales: static assets served by the app."""
