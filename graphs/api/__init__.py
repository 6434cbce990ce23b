"""The LangGraph Agent Server API over the request graph, as the `langgraph_sdk` client calls it.

This package owns the API's resources and nothing else: `records` keeps threads and runs in a
small SQLite file next to the checkpointer (so both survive a restart), `views` turns the graph's
state into what clients read (LangChain messages, thread states, SSE parts), `runs` executes runs
in background threads and fans their stream parts out to listeners, and `routes` is the HTTP edge
(assistants, threads, runs). `scenarios` serves the scenario files of `edgeai run` at
/scenarios/runs, each run in a fresh home of its own under the server's. The app's assembly it
runs on is graphs/app.py; server.py mounts the routes. Nothing here imports cli/.
"""
