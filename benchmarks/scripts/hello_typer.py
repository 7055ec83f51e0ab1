"""Baseline for goal 3: a hello-world typer app with one command."""

import typer

app = typer.Typer()


@app.command()
def hello() -> None:
    print("hello")


if __name__ == "__main__":
    app()
