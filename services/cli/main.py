"""Entry point of the `atelier` console script.

Commands live in their own modules and are imported only when invoked, so `atelier dev` or `atelier submit` never
pay for (or need) TensorFlow; only `atelier stylize` and `atelier styles train --local` load the engine.
"""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "stylize": "services.cli.stylize:stylize",
    "dev": "services.cli.dev:dev",
    "demo": "services.cli.demo:demo",
    "submit": "services.cli.jobs:submit",
    "status": "services.cli.jobs:status",
    "batch": "services.cli.batch:batch",
    "styles": "services.cli.styles:styles",
    "keys": "services.cli.keys:keys",
    "webhooks": "services.cli.webhooks:webhooks",
    "video": "services.cli.video:video",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup)
@click.version_option(package_name="atelier")
def cli() -> None:
    """Atelier: neural style transfer as a service."""


if __name__ == "__main__":  # pragma: no cover
    cli()
