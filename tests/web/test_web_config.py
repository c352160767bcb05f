"""The ``[web]`` section: defaults, and every wrong value named with its key."""

from __future__ import annotations

import pytest

from mailbot.config import ConfigError, config_from_mapping


def test_defaults_listen_on_loopback_with_proxy_trust_off() -> None:
    web = config_from_mapping({}).web
    assert web.address == ("127.0.0.1", 8080)
    assert web.trusted_proxies == ()
    assert web.proxy_user_header == ""


def test_a_non_loopback_address_is_allowed_for_a_proxy_on_another_host() -> None:
    config = config_from_mapping({"web": {"listen": "192.0.2.10:8080"}})
    assert config.web.address == ("192.0.2.10", 8080)


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ({"listen": "localhost:8080"}, "web.listen: 'localhost:8080': the host must be an IP"),
        ({"session_idle_minutes": 0}, "web.session_idle_minutes: must be positive"),
        ({"trusted_proxies": ["nginx"]}, "web.trusted_proxies[0]: 'nginx' is not an IP address"),
        ({"proxy_user_header": "X-Remote-User"}, "web.proxy_user_header: set web.trusted_proxies"),
        ({"proxy_user_header": "X User", "trusted_proxies": ["127.0.0.1"]}, "is no header name"),
    ],
)
def test_wrong_values_are_named(web: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        config_from_mapping({"web": web})
    assert message in str(error.value)
