"""Who may call the service and what they did: API keys (only their hashes are stored) and the append-only audit
trail, over the API's own tables."""
