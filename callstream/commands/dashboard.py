"""``callstream dashboard``: the Dash dashboard over the warehouse."""

from __future__ import annotations

import argparse

from callstream.commands.common import add_setting_arg, settings_from_args


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``dashboard`` and its flags."""
    parser = sub.add_parser(
        "dashboard", help="serve the dashboard (calls, spend, recordings, alerts), live",
        description="Serve the Dash dashboard over the warehouse (CALLSTREAM_WAREHOUSE). Pages refresh "
                    "every CALLSTREAM_REFRESH_S seconds and say how fresh their data is. Binds "
                    "127.0.0.1 by default; any other address needs CALLSTREAM_DASH_USERS or "
                    "CALLSTREAM_DASH_TOKEN.")
    add_setting_arg(parser, "--host", "dash_host", metavar="H",
                    help_="address to bind (default: CALLSTREAM_DASH_HOST or 127.0.0.1)")
    add_setting_arg(parser, "--port", "dash_port", _port, metavar="P",
                    help_="port (default: CALLSTREAM_DASH_PORT or 8050)")
    add_setting_arg(parser, "--warehouse", "warehouse", metavar="DIR",
                    help_="warehouse directory (default: CALLSTREAM_WAREHOUSE or var/warehouse)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; a bad bind or an unreadable warehouse is a one-line error."""
    import signal
    import sys

    from common.errors import CliError
    from dashboards import auth
    from dashboards.app import serve
    from warehouse.reader import WarehouseError

    settings = settings_from_args(args)
    auth.check_bind(settings)
    # waitress stops on KeyboardInterrupt; SIGTERM (the supervisor's stop) should do the same.
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"callstream dashboard: http://{_url_host(settings.dash_host)}:{settings.dash_port}/ "
          f"(warehouse {settings.warehouse})", file=sys.stderr, flush=True)
    try:
        serve(settings)
    except WarehouseError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot serve on {settings.dash_host}:{settings.dash_port}: {exc.strerror}") from None
    except KeyboardInterrupt:
        return 0
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
