"""Platform services, each a chain of backends ending in one that cannot fail:
notifications, autostart, single instance."""
