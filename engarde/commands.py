"""Base for the project's management commands: bad input is one line and a non-zero exit.

Django already prints a ``CommandError`` as one line; this also keeps argparse from printing its
usage block, and turns a model ``ValidationError`` into the same one line.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


def one_line(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)


class Command(BaseCommand):
    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.print_usage = lambda file=None: None  # argparse errors: just "error: …"
        return parser

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ValidationError as exc:
            raise CommandError(one_line(exc)) from None
