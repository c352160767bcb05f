"""The registration world of the handler tests, for alerts raised by the real processor."""

from tests.handler.conftest import make_world

__all__ = ["make_world"]
