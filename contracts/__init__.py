"""Event contracts of chatshare: one pydantic model per event, a discriminated union per topic."""
