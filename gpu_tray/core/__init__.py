"""Qt-free core: models, the NA value, the poll command and its parser, rules, config."""
