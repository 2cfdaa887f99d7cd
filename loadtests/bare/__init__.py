"""Bare baseline servers for ``loadtests/bench_hub.py``: the least a server can do
for each figure the bench measures, so the hub's figures come with a ratio.

* ``starlette_server`` — Starlette under uvicorn with the hub's own uvicorn options:
  hello → reply + a snapshot-sized frame, idle; ``question.ask`` → one INSERT in its
  own transaction + Redis XADD → reply; ``POST /broadcast`` → a plain send loop to
  every viewer socket.
* ``websockets_server`` — the `websockets` library alone: hello → reply + snapshot, idle.
"""
