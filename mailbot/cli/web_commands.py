"""``mailbot web [serve]`` and ``mailbot web user add|list|disable|passwd``: the web console."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from mailbot.cli.common import (
    CliError,
    add_config_option,
    add_format_option,
    config_from_args,
    render_rows,
)
from mailbot.cli.quarantine_commands import default_decider
from mailbot.directory.session import database
from mailbot.web import audit
from mailbot.web.accounts import (
    AccountError,
    add_user,
    get_user,
    hash_password,
    list_users,
)
from mailbot.web.roles import Role

COLUMNS = ("name", "role", "active", "created_at")


def register(subparsers: Any) -> None:
    """Add ``web`` (alone: serve), ``web serve`` and ``web user add|list|disable|passwd``."""
    # Not command_group: ``mailbot web`` alone serves, so its actions are optional.
    group = subparsers.add_parser(
        "web",
        help="the web console (alone: serve it)",
        description="The web console for administrators: a separate process "
        "(mailbot-web.service) on the same configuration and database as the daemon, and "
        "its accounts. Without an action: serve the console on [web] listen until SIGTERM "
        "(as 'web serve').",
    )
    add_config_option(group, inherit=True)
    group.set_defaults(handler=web_serve)
    web = group.add_subparsers(dest="web_command", metavar="ACTION")
    serve = web.add_parser(
        "serve",
        help="serve the web console on web.listen",
        description="Serve the web console on [web] listen until SIGTERM. Put a TLS reverse "
        "proxy (nginx) in front of it; see the admin guide.",
    )
    add_config_option(serve, inherit=True)
    serve.set_defaults(handler=web_serve)

    user = web.add_parser("user", help="web console accounts", description="Web console accounts.")
    actions = user.add_subparsers(dest="web_user_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="add an account (password from stdin)",
        description="Add an account. The password is read from stdin (one line; asked twice "
        "on a terminal), at least 10 characters.",
    )
    add.add_argument("name", help="the login name")
    add.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role],
        help="viewer: reads only; operator: also decides quarantine and edits directories; "
        "admin: everything (accounts, audit, raw letters, whole SNILS)",
    )
    add_config_option(add, inherit=True)
    add.set_defaults(handler=web_user_add)
    listing = actions.add_parser("list", help="list accounts", description="List accounts.")
    add_config_option(listing, inherit=True)
    add_format_option(listing, ("table", "csv", "json"))
    listing.set_defaults(handler=web_user_list)
    for action, text, handler in (
        ("disable", "disable an account (it can no longer log in)", web_user_disable),
        ("passwd", "set an account's password (from stdin); ends its sessions", web_user_passwd),
    ):
        parser = actions.add_parser(action, help=text, description=text[0].upper() + text[1:])
        parser.add_argument("name", help="the login name")
        add_config_option(parser, inherit=True)
        parser.set_defaults(handler=handler)


def web_serve(args: argparse.Namespace) -> int:
    """``web`` and ``web serve``."""
    from mailbot.web.server import serve  # uvicorn only for the command that needs it

    serve(config_from_args(args))
    return 0


def web_user_add(args: argparse.Namespace) -> int:
    """``web user add NAME --role ROLE``."""
    config = config_from_args(args)
    password = _read_password()
    with database(config) as sessions, sessions() as session:
        try:
            user = add_user(session, args.name, Role(args.role), password)
        except AccountError as exc:
            raise CliError(str(exc)) from None
        audit.record(session, _actor(), "web_user.add", f"web_user:{user.name}",
                     {"role": user.role})  # fmt: skip
        session.commit()
    print(f"web user {args.name} added ({args.role})")
    return 0


def web_user_list(args: argparse.Namespace) -> int:
    """``web user list``."""
    config = config_from_args(args)
    with database(config) as sessions, sessions() as session:
        rows = [
            {"name": u.name, "role": u.role, "active": u.active, "created_at": u.created_at}
            for u in list_users(session)
        ]
    print(render_rows(rows, COLUMNS, args.format))
    return 0


def web_user_disable(args: argparse.Namespace) -> int:
    """``web user disable NAME``."""
    config = config_from_args(args)
    with database(config) as sessions, sessions() as session:
        try:
            user = get_user(session, args.name)
        except AccountError as exc:
            raise CliError(str(exc)) from None
        user.active = False
        audit.record(session, _actor(), "web_user.disable", f"web_user:{user.name}")
        session.commit()
    print(f"web user {args.name} disabled")
    return 0


def web_user_passwd(args: argparse.Namespace) -> int:
    """``web user passwd NAME``."""
    config = config_from_args(args)
    password = _read_password()
    with database(config) as sessions, sessions() as session:
        try:
            user = get_user(session, args.name)
            user.password_hash = hash_password(password)
        except AccountError as exc:
            raise CliError(str(exc)) from None
        audit.record(session, _actor(), "web_user.passwd", f"web_user:{user.name}")
        session.commit()
    print(f"password of web user {args.name} set")
    return 0


def _read_password() -> str:
    """One line from stdin; on a terminal asked twice without echo."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != first:
            raise CliError("the passwords differ")
        return first
    line = sys.stdin.readline(4096)
    password = line.rstrip("\r\n")
    if not password:
        raise CliError("no password on stdin")
    try:
        hash_password(password)  # the length checks, before the database is touched
    except AccountError as exc:
        raise CliError(str(exc)) from None
    return password


def _actor() -> str:
    """Who ran the command, for the audit log."""
    return f"cli:{default_decider()}"
