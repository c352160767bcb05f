"""The database: organisations, subscribers, CAs, certificates, journal and outbox."""
