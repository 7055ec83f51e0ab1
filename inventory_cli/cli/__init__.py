"""The command line: typer commands, output rendering and the one error boundary."""
