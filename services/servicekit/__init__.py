"""What every chatshare service is built from: settings, JWT auth, health and metrics routes,
Kafka consumer plumbing with dead letters, the outbox relay and the policy view."""
