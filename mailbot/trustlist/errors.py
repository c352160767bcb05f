"""The one error a trust list file raises when it cannot be read at all."""

from __future__ import annotations


class TrustListError(Exception):
    """The file is not a readable list of accredited CAs (not XML, wrong root, truncated,
    a DTD, over a size limit, no version). The message is meant for the administrator.

    Entries that merely fail a check are :class:`~mailbot.trustlist.model.Problem` values,
    never this error.
    """
