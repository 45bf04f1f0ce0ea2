"""The applications the server benchmarks start under uvicorn (or Node), one module per scenario."""
