"""`higgs serve`: one warm model session shared by every command and client over HTTP.

`app.py` (the ASGI app: OpenAI-compatible speech, the native endpoints, health
and metrics) over `engine.scheduler.Scheduler`. The client half (`RemoteSession`,
the transport, discovery of local servers, and the wire protocol both halves
share) lives in `higgs_cli/sessions/`. See docs/server.md and docs/security.md.
"""
