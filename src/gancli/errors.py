"""Errors a user can cause. The CLI prints them as one line and exits with status 2."""
from __future__ import annotations


class GancliError(Exception):
    """Something the user can fix: the message says what is wrong and what to do."""

    exit_code = 2


class PluginError(GancliError):
    """A plugin failed while doing its job; the message names the plugin and its version."""
