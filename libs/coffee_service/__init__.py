"""What the HTTP services (ingest, dashboard) share: how they run under uvicorn (``serve``), their
RFC 9457 error answers (``problems``) and the SHA-256 token digests they check (``tokens``)."""
