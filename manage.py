#!/usr/bin/env python
"""Django's command-line utility, and the composition root of the commands: the workers' per-user
stores are registered here, so export_user / erase_user cover them without the webapp importing
worker code."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    from django.core.management import execute_from_command_line

    from workers.state.personal_data import register_stores

    register_stores()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
