"""Assemble the running parts from a configuration: routes, templates, CRL source, processor.

The daemon and the CLI build their pieces here, so both process letters the
same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.letters import LetterProcessor
from mailbot.config import Config
from mailbot.notices.templates import Templates, load_templates
from mailbot.pki.crl_fetch import CachingCrlSource, CrlSource, HttpCrlFetcher
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.issuer import CaDirectory
from mailbot.regulation.routes import RouteTable, load_routes


def crl_store(config: Config) -> CrlStore:
    """The on-disk CRL cache and revocation index."""
    return CrlStore(
        config.crl_cache_dir,
        config.crl.max_crl_bytes,
        ingest_timeout=config.crl.ingest_timeout_seconds,
    )


def crl_fetcher(config: Config) -> HttpCrlFetcher:
    """The HTTP(S) fetcher with the configured limits and proxy.

    Raises SecretError when the proxy's password cannot be read.
    """
    return HttpCrlFetcher(
        timeout_seconds=config.crl.fetch_timeout_seconds,
        max_bytes=config.crl.max_crl_bytes,
        max_redirects=config.crl.max_redirects,
        proxy=config.crl.proxy,
        proxy_password=proxy_password(config),
    )


def proxy_password(config: Config) -> str:
    """``[crl]``'s proxy password for every download ("" when none is configured).

    Raises SecretError when it cannot be read.
    """
    password = config.crl.proxy_password
    return password.resolve().reveal() if password.configured else ""


def crl_source_factory(
    config: Config, store: CrlStore | None = None, fetcher: HttpCrlFetcher | None = None
) -> Callable[[CaDirectory], CrlSource]:
    """CRL sources sharing one cache and fetcher, each reading one CA directory."""
    shared_store = store or crl_store(config)
    shared_fetcher = fetcher or crl_fetcher(config)
    grace = timedelta(seconds=config.crl.grace_seconds)

    def for_directory(directory: CaDirectory) -> CrlSource:
        return CachingCrlSource(shared_store, shared_fetcher, directory, config.crl_drop_dir, grace)

    return for_directory


def load_rules_and_templates(config: Config) -> tuple[RouteTable, Templates]:
    """Routes and templates, validated (raises RulesError / TemplateError)."""
    return load_routes(config.rules_dir), load_templates(config.templates_dir)


def make_processor(
    config: Config,
    sessions: sessionmaker[Session],
    routes: RouteTable | None = None,
    templates: Templates | None = None,
) -> LetterProcessor:
    """The letter processor for *config* on the given database.

    Routes and templates are loaded unless given (the daemon's decision process
    gets the ones the daemon validated).
    """
    if routes is None or templates is None:
        routes, templates = load_rules_and_templates(config)
    return LetterProcessor(config, sessions, routes, templates, crl_source_factory(config))
