"""A program version's promotions, indexed once so a receipt looks up only its candidates.

Promotions with ``when.items`` are found through the sku, category and tag of each line;
the others (``unscoped``) are candidates for every receipt. Disabled promotions are kept
for :meth:`Catalog.promotion` (a coupon of a disabled promotion is "not applicable", not
"unknown") but are left out of every index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .basket import Basket
from .coupons import promotion_tag
from .program import CategoryMatch, Program, ProgramFile, Promotion


def _freeze(index: dict[str, list[int]]) -> Mapping[str, tuple[int, ...]]:
    return MappingProxyType({key: tuple(ranks) for key, ranks in index.items()})


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """The promotions of one program version in application order, with lookup indexes.

    A promotion's *rank* is its position in :attr:`ordered` (descending ``priority``, then
    ``id``), so sorting candidates by rank sorts them in application order.
    """

    program: Program
    ordered: tuple[Promotion, ...]  # enabled promotions in application order
    by_id: Mapping[str, Promotion] = field(repr=False)  # every promotion, enabled or not
    rank_of: Mapping[str, int] = field(repr=False)
    by_sku: Mapping[str, tuple[int, ...]] = field(repr=False)
    by_category: Mapping[str, tuple[int, ...]] = field(repr=False)
    by_tag: Mapping[str, tuple[int, ...]] = field(repr=False)
    unscoped: tuple[int, ...] = field(repr=False)  # ranks of promotions without item filters
    near: tuple[int, ...] = field(repr=False)  # ranks of promotions with an upsell hint
    # [[categories.match]]: a line's category from its name (core/productmatch.py).
    category_rules: tuple[CategoryMatch, ...] = field(default=(), repr=False)
    # A coupon's promotion tag → the id of the promotion that issues or takes it (enabled or
    # not), and the ids of promotions with a points budget: looked up per receipt, so built
    # here once rather than by a scan of every promotion per calculate.
    coupon_promotions: Mapping[int, str] = field(default_factory=dict, repr=False)
    budgeted: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def build(cls, program_file: ProgramFile) -> Catalog:
        """Index a validated program file; done once per program version."""
        enabled = [p for p in program_file.promotions if p.enabled]
        ordered = tuple(sorted(enabled, key=lambda p: (-p.priority, p.id)))
        skus: dict[str, list[int]] = {}
        categories: dict[str, list[int]] = {}
        tags: dict[str, list[int]] = {}
        unscoped: list[int] = []
        near: list[int] = []
        for rank, promo in enumerate(ordered):
            items = promo.when.items
            if items is not None and items.any:
                for sku in dict.fromkeys(items.skus):
                    skus.setdefault(sku, []).append(rank)
                for category in dict.fromkeys(items.categories):
                    categories.setdefault(category, []).append(rank)
                for tag in dict.fromkeys(items.tags):
                    tags.setdefault(tag, []).append(rank)
            else:
                unscoped.append(rank)
            if promo.hint is not None and promo.hint.near > 0:
                near.append(rank)
        return cls(
            program=program_file.program,
            ordered=ordered,
            by_id=MappingProxyType({p.id: p for p in program_file.promotions}),
            rank_of=MappingProxyType({p.id: rank for rank, p in enumerate(ordered)}),
            by_sku=_freeze(skus),
            by_category=_freeze(categories),
            by_tag=_freeze(tags),
            unscoped=tuple(unscoped),
            near=tuple(near),
            category_rules=program_file.categories.match,
            coupon_promotions=MappingProxyType(
                {
                    promotion_tag(p.id): p.id
                    for p in program_file.promotions
                    if p.reward.kind == "coupon" or p.when.coupon
                }
            ),
            budgeted=tuple(p.id for p in program_file.promotions if p.limits.budget_points),
        )

    def promotion(self, id: str) -> Promotion | None:
        """The promotion with this id, enabled or not; None if the program has none."""
        return self.by_id.get(id)

    def matching(self, basket: Basket) -> dict[int, tuple[int, ...]]:
        """Rank → positions of the eligible lines each item-filtered promotion matches.

        Costs one dictionary look-up per sku, category and tag of each line, however many
        promotions the program has.
        """
        found: dict[int, list[int]] = {}
        for i in basket.eligible_idx:
            line = basket.lines[i]
            ranks = set(self.by_sku.get(line.sku, ()))
            for code in line.codes:
                ranks.update(self.by_sku.get(code, ()))
            if line.category is not None:
                ranks.update(self.by_category.get(line.category, ()))
            for tag in line.tags:
                ranks.update(self.by_tag.get(tag, ()))
            for rank in ranks:
                found.setdefault(rank, []).append(i)
        return {rank: tuple(found[rank]) for rank in sorted(found)}

    def scope(
        self, rank: int, matching: Mapping[int, tuple[int, ...]], basket: Basket
    ) -> tuple[int, ...]:
        """The lines promotion ``rank`` is about: its matches, or every eligible line."""
        items = self.ordered[rank].when.items
        if items is not None and items.any:
            return matching.get(rank, ())
        return basket.eligible_idx
