"""What the HTTP services (ingest, dashboard) share: settings read from prefixed environment variables,
and how they run under uvicorn."""
