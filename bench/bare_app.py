"""The smallest web service: FastAPI under uvicorn with one route. Its resident set is the floor a
Python service of Pulih's stack cannot go under (bench/idle_rss.py's limit)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Always well."""
    return {"status": "ok"}
