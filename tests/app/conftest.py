"""The handler tests' registration world (a CA, a subscriber, a processor), on both databases."""

from tests.handler.conftest import make_world  # noqa: F401
