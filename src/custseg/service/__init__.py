"""The live service: HTTP API over the store."""
