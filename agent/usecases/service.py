"""The till's use cases behind one object: what the POS API, interception, devices and
sync hold.

:class:`TillService` is a :class:`~.context.TillContext` (the collaborators, handed in at
construction) whose methods are the use cases, each a function of its own module:
:mod:`.calculate`, :mod:`.checkout` (confirm, cancel), :mod:`.returns` (refund), :mod:`.lookup`
(card lookup, present, status) and :mod:`.setup` (program, cards, sweep).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from tillgate.core.cardfile import CardRecord
from tillgate.core.products import Product
from tillgate.core.rules.engine import Catalog
from tillgate.core.rules.program import ProgramFile

from ..store import products as store_products
from ..store import program as store_program
from . import calculate, checkout, lookup, returns, setup
from .context import TillContext
from .request import SaleRequest


class TillService(TillContext):
    """Everything the POS API does, over one data file."""

    def install_program(self, program: ProgramFile, *, version: str) -> bool:
        return setup.install_program(self, program, version=version)

    def import_cards(self, records: list[CardRecord]) -> int:
        return setup.import_cards(self, records)

    def import_card_rows(
        self, rows: Iterable[tuple[int, CardRecord]], *, problems: list[str], source: str
    ) -> int:
        return setup.import_card_rows(self, rows, problems=problems, source=source)

    def cards_file_in_force(self) -> str | None:
        return setup.cards_file_in_force(self)

    def install_products(self, products: list[Product], *, version: str | None) -> bool:
        return setup.install_products(self, products, version=version)

    def products_version(self) -> str | None:
        """The version of the product list in force (None: no list)."""
        with self.db.read() as conn:
            return store_products.SqliteProducts(conn).version

    def sweep(self) -> None:
        setup.sweep(self)

    def prune(self) -> int:
        return setup.prune(self)

    def program_in_force(self) -> str | None:
        """The version of the program in force in the data file (None: none yet)."""
        with self.db.read() as conn:
            return store_program.version(conn)

    def catalog(self) -> Catalog:
        with self.db.read() as conn:
            return self.catalog_in(conn)

    def calculates_quickly(self) -> bool:
        """Whether a calculate now needs neither the network nor a wait for the data file: no
        head-office holds to ask for (a standalone till, or a chain's without holds), and no
        other write in progress. The POS API then runs it on its event loop, sparing the
        hop to a worker thread and back (docs/performance.md, "latency")."""
        return not self.reservations.enabled and self.db.idle()

    def calculate(self, req: SaleRequest, *, money_off: bool = True) -> dict[str, Any]:
        return calculate.calculate(self, req, money_off=money_off)

    def confirm(
        self,
        receipt_id: str,
        *,
        paid: str | None = None,
        fiscal_id: str | None = None,
        print_items: bool = True,
    ) -> dict[str, Any]:
        return checkout.confirm(
            self, receipt_id, paid=paid, fiscal_id=fiscal_id, print_items=print_items
        )

    def cancel(self, receipt_id: str) -> dict[str, Any]:
        return checkout.cancel(self, receipt_id)

    def refund(
        self, receipt_id: str, *, refund_id: str, lines: list[tuple[int, Decimal]] | None
    ) -> dict[str, Any]:
        return returns.refund(self, receipt_id, refund_id=refund_id, lines=lines)

    def card_lookup(self, raw: str) -> dict[str, Any]:
        return lookup.card_lookup(self, raw)

    def present(self, raw: str, *, source: str) -> dict[str, Any]:
        return lookup.present(self, raw, source=source)

    def status(self) -> dict[str, Any]:
        return lookup.status(self)
