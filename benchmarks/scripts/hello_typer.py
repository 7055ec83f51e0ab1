"""Baseline for goal 3: a hello-world typer app with one command.

Like the tool, it freezes the garbage collector as it ends (see cli/main.py),
so that the exit costs both the same and the ratio compares like with like.
"""

import gc

import typer

app = typer.Typer()


@app.command()
def hello() -> None:
    print("hello")


if __name__ == "__main__":
    try:
        app()
    finally:
        gc.freeze()
