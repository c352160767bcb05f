"""The web console's roles, from least to most allowed."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """``web_users.role``. Each role may do everything the roles before it may."""

    #: Reads every page; changes nothing; sees SNILS masked.
    VIEWER = "viewer"
    #: Also decides quarantined certificates and edits the directories.
    OPERATOR = "operator"
    #: Everything: accounts, the audit page, raw letters, whole SNILS.
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for operator, 2 for admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what *needed* may."""
        return self.rank >= needed.rank


#: Russian names shown on the pages.
ROLE_TITLES = {Role.VIEWER: "наблюдатель", Role.OPERATOR: "оператор", Role.ADMIN: "администратор"}
