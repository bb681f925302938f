"""Slack adapter: the Notifier port over slack_sdk's AsyncWebClient."""

from adapters.driven.slack.notifier import NullNotifier, SlackNotifier

__all__ = ["NullNotifier", "SlackNotifier"]
