"""Channels beyond the desktop: Slack, ntfy, email, webhooks... through Apprise URLs.

Qt-free, used by the tray, the settings dialog and `gpu-tray watch`:
- `store`: a channel's URL in the OS keyring (account `channel:NAME`), never in a file;
- `deliver`: one message to one URL through Apprise, with the failure reason scrubbed
  of every part of the URL;
- `message` and `routing`: what is said, and which rule's firing goes where;
- `sender`: delivery on threads of its own, one per channel, with bounded retries.
"""
