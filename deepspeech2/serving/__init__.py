"""``ds2-serve``: the model behind an HTTP/WebSocket API and a web page (FastAPI + uvicorn)."""
