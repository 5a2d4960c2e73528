"""One module per server of the local stack; each knows how to prepare, start and check itself."""
