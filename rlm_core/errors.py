"""Exceptions rlm-core raises for problems the user can fix.

The CLI turns each into a one-line message and exit code 2; nothing here is a bug report.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "PluginNotConfiguredError",
    "PluginSelectionError",
    "RLMError",
    "UsageError",
]


class RLMError(Exception):
    """Base class of every error rlm-core reports to the user."""


class ConfigError(RLMError):
    """A configuration value is wrong; the message names the file or variable and the key."""


class PluginSelectionError(ConfigError):
    """The tracker selection names a plugin that is not installed or cannot be used."""


class UsageError(RLMError):
    """An argument cannot be used (e.g. a blank question); nothing was recorded."""


class PluginNotConfiguredError(RLMError):
    """Raised by a plugin's constructor when it has nothing to do until configured (a tracker
    without an endpoint): the plugin is then *disabled* with this message as the reason, not
    unavailable, and asking for it by name is a usage error."""
