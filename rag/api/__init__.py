"""HTTP service: FastAPI app assembled in app.py, one module per resource in routes/."""
