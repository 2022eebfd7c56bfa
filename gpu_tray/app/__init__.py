"""The composition root: config -> sources -> controller -> views."""
