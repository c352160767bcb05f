"""The TOML configuration: its schema, loading and validation."""

from mailbot.config.loader import ConfigError, config_from_mapping, load_config
from mailbot.config.schema import Config
from mailbot.config.secrets import Secret, SecretError, SecretSource

__all__ = [
    "Config",
    "ConfigError",
    "Secret",
    "SecretError",
    "SecretSource",
    "config_from_mapping",
    "load_config",
]
