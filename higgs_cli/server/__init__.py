"""`higgs serve`: one warm model session shared by every command and client over HTTP.

`app.py` (the ASGI app: OpenAI-compatible speech, the native endpoints, health
and metrics) over `engine.scheduler.Scheduler`; `client.py` (`RemoteSession`,
torch-free) and `discovery.py` (advertised local servers) are what the CLI
uses. See docs/server.md and docs/security.md.
"""
