"""chatshare's operator CLI, the `chatshare` console script: rebuild and re-feed read models,
inspect and redrive dead letters, tail event topics, and show consumer-group lag."""
