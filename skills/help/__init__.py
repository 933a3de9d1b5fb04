"""The help skill: lists the registered skills and their help text."""
