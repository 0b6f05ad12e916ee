"""One module per ``callstream`` subcommand (see :mod:`callstream.cli`)."""
