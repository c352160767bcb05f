"""Reaching the network: the one HTTP client the service's downloads share."""
