"""Use cases: each owns one transaction and its effects (journal, directories, outbox)."""
