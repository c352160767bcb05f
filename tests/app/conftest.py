"""The registration world (:mod:`tests.app.world`) for every use-case test of this folder."""

from tests.app.world import make_world, world  # noqa: F401
