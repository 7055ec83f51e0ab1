"""Did you mean…? The closest known codes of a store, for a code it does not know.

Only read when a code turned out to be unknown (an empty answer, a refusal, a
stream's first event), and only from the projections' code lists: cheap.
Typos a person makes at a counter: case (tea-250), a missing or extra dash or
space (TEA250), one letter swapped or wrong (MUG-BLEU). Codes that differ by a
digit (SKU-1, SKU-2) are different products, not typos, and are not suggested.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import typer

from inventory_cli.cli.context import read
from inventory_cli.domain.errors import RuleViolation

_CUTOFF = 0.85  # difflib's ratio: MUG-BLEU/MUG-BLUE 0.88 passes, SKU-1/SKU-2 0.8 does not


def close_codes(code: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known codes closest to ``code`` (never ``code`` itself), best first."""
    import difflib

    folded: dict[str, list[str]] = {}
    for candidate in known:
        if candidate != code:
            folded.setdefault(_fold(candidate), []).append(candidate)
    target = _fold(code)
    if target in folded:  # the same letters and digits: surely meant
        return folded[target][:n]
    close = difflib.get_close_matches(target, list(folded), n=n, cutoff=_CUTOFF)
    return [original for match in close for original in folded[match]][:n]


def _fold(code: str) -> str:
    return "".join(ch for ch in code.casefold() if ch.isalnum())


def _did_you_mean(matches: list[str]) -> str:
    return "did you mean " + " or ".join(matches) + "?"


def _say(text: str) -> None:
    sys.stderr.write(f"inventory: {text}\n")


def unknown_product(ctx: typer.Context, store: str, product: str) -> None:
    """On stderr, when PRODUCT is not a product of STORE and a known one is close."""
    known = read(ctx, lambda s: s.product_codes(store))
    if product not in known:
        matches = close_codes(product, known)
        if matches:
            _say(f"no product {product} in store {store}; {_did_you_mean(matches)}")


@contextmanager
def on_refusal(ctx: typer.Context, store: str, product: str) -> Iterator[None]:
    """A write refused for a product the store does not know says which code was meant."""
    try:
        yield
    except RuleViolation:
        unknown_product(ctx, store, product)
        raise


def new_product(ctx: typer.Context, store: str, product: str) -> None:
    """After a product's first event in a store: a close known code is named."""
    matches = close_codes(product, read(ctx, lambda s: s.product_codes(store)))
    if matches:
        _say(f"new product {product}; {_did_you_mean(matches)}")


def new_store(ctx: typer.Context, store: str) -> None:
    """After a transfer to a store: if it has just been created and a known one is close."""
    def look(s):
        codes = s.store_codes()
        lines = s.stock_lines(store, None)
        return codes, len(lines) == 1 and lines[0].version == 1

    codes, is_new = read(ctx, look)
    matches = close_codes(store, codes) if is_new else []
    if matches:
        _say(f"new store {store}; {_did_you_mean(matches)}")
