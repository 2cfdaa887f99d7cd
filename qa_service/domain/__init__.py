"""Pure rules of the Q&A: no Starlette, Redis, SQL or sockets in here."""
