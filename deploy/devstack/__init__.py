"""Local stack: a real Kafka and PostgreSQL without Docker, and the services as processes."""
