"""Checks of a program file across its parts: refusals that need the whole file, and warnings.

*Cross-checks* (a duplicate id, a tier no tier table names, two coupon promotions whose
code tags collide) refuse the file like a field error. They read the decoded file itself
(:func:`refs_of_data`) as well as the validated one, so a file with field errors elsewhere
is told about them in the same pass instead of after the field errors are fixed.

*Warnings* (:func:`program_warnings`) do not refuse anything: a category no product has,
and two money-off promotions of equal priority whose result depends on how their ids are
spelled. ``tillgate check-program`` prints them. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from .coupons import promotion_tag

if TYPE_CHECKING:  # program.py imports this module: names for annotations only
    from .program import Items, ProgramFile, Promotion

_BOOL: TypeAdapter[bool] = TypeAdapter(bool)


@dataclass(frozen=True, kw_only=True)
class PromoRef:
    """What the cross-checks need of one promotion, read from a model or from raw data."""

    index: int
    id: str | None  # None: missing or not a string
    tiers: tuple[str, ...]  # who.tiers
    coupon: bool  # issues coupons or needs one: its id is in coupon codes


def refs_of_file(file: ProgramFile) -> tuple[list[PromoRef], set[str]]:
    """The promotions and tier names of a validated file."""
    refs = [
        PromoRef(
            index=i,
            id=p.id,
            tiers=p.who.tiers,
            coupon=p.reward.kind == "coupon" or p.when.coupon,
        )
        for i, p in enumerate(file.promotions)
    ]
    return refs, {t.name for t in file.program.tiers}


def _table(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _text(value: Any) -> str | None:
    # As the models read it (str_strip_whitespace): " a" is the id "a".
    return value.strip() if isinstance(value, str) else None


def _flag(value: Any) -> bool:
    # As pydantic reads a bool ("true", 1, …), so both readings of a file agree.
    try:
        return value is not None and _BOOL.validate_python(value)
    except ValidationError:
        return False


def refs_of_data(data: Mapping[str, Any]) -> tuple[list[PromoRef], set[str] | None]:
    """The promotions and tier names of a decoded file that may not validate.

    Whatever cannot be read is left out (a field error reports it); tier names are None
    when the tier list cannot be read, so no tier is called unknown against it.
    """
    promotions = data.get("promotions")
    refs: list[PromoRef] = []
    if isinstance(promotions, list):
        for i, raw in enumerate(promotions):
            if not isinstance(raw, Mapping):
                continue
            tiers = _table(_table(raw, "who"), "tiers")
            refs.append(
                PromoRef(
                    index=i,
                    id=_text(raw.get("id")),
                    tiers=tuple(t for t in map(_text, tiers) if t)
                    if isinstance(tiers, list)
                    else (),
                    coupon=_table(_table(raw, "reward"), "kind") == "coupon"
                    or _flag(_table(_table(raw, "when"), "coupon")),
                )
            )
    tiers_raw = _table(data.get("program"), "tiers")
    names: set[str] | None = None
    if isinstance(tiers_raw, list) and all(
        _text(_table(t, "name")) for t in tiers_raw
    ):  # a nameless tier is a field error; then nothing is judged by the list
        names = {str(_text(_table(t, "name"))) for t in tiers_raw}
    elif tiers_raw is None and isinstance(data.get("program"), Mapping):
        names = set()  # no tier table: every tier a promotion names is unknown
    return refs, names


def cross_problems(refs: Sequence[PromoRef], tiers: set[str] | None) -> list[str]:
    """Duplicate ids, unknown tiers and colliding coupon tags, as ``path: message`` lines."""
    problems: list[str] = []
    seen: set[str] = set()
    for ref in refs:
        if ref.id is not None:
            if ref.id in seen:
                problems.append(f"promotions[{ref.index}].id: duplicate id {ref.id!r}")
            seen.add(ref.id)
        if tiers is not None:
            for t in ref.tiers:
                if t not in tiers:
                    problems.append(f"promotions[{ref.index}].who.tiers: unknown tier {t!r}")
    # Coupon codes name their promotion by a short hash; two coupon promotions with the
    # same hash could not be told apart at the till, so such a program is refused.
    tags: dict[int, PromoRef] = {}
    for ref in refs:
        if not ref.coupon or ref.id is None:
            continue
        tag = promotion_tag(ref.id)
        first = tags.setdefault(tag, ref)
        if first.id != ref.id:
            problems.append(
                f"promotions[{ref.index}].id: its coupon code tag collides with "
                f"promotions[{first.index}] ({first.id!r}); rename one"
            )
    return problems


def named(problems: Iterable[str], ids: Mapping[int, str]) -> list[str]:
    """Problems about a promotion with its id added: ``promotions[2].x: … (promotion 'id')``.

    The path stays first, as written, so a line is still found by it; the id is what a
    person knows the promotion by.
    """
    out: list[str] = []
    for line in problems:
        index = _index_of(line)
        pid = ids.get(index) if index is not None else None
        out.append(line if pid is None or repr(pid) in line else f"{line} (promotion {pid!r})")
    return out


def _index_of(line: str) -> int | None:
    if not line.startswith("promotions["):
        return None
    digits = line[len("promotions[") :].split("]", 1)[0]
    return int(digits) if digits.isdigit() else None


# ---------------------------------------------------------------- warnings


def program_warnings(file: ProgramFile, *, known_categories: set[str] | None = None) -> list[str]:
    """What is allowed but probably not meant, as ``path: message`` lines.

    ``known_categories``: the categories of the product list the file will run with; None
    when there is none to check against (then categories are not judged).
    """
    out: list[str] = []
    if known_categories is not None:
        out += _unknown_categories(file, known_categories)
    out += _equal_priorities(file)
    return out


def _unknown_categories(file: ProgramFile, products: set[str]) -> list[str]:
    # A match rule's category is known even when no product has it: the rule gives it.
    known = products | {rule.category for rule in file.categories.match}
    out: list[str] = []

    def check(path: str, categories: Iterable[str], pid: str | None) -> None:
        for category in categories:
            if category not in known:
                who = f" (promotion {pid!r})" if pid is not None else ""
                out.append(
                    f"{path}: no product in the product list has category {category!r}{who}; "
                    "check the spelling, or the product list"
                )

    check("program.no_discount_categories", file.program.no_discount_categories, None)
    for i, p in enumerate(file.promotions):
        if p.when.items is not None:
            check(f"promotions[{i}].when.items.categories", p.when.items.categories, p.id)
        items = getattr(p.reward, "items", None)
        if items is not None:
            check(f"promotions[{i}].reward.items.categories", items.categories, p.id)
    return out


@dataclass(frozen=True)
class _Money:
    """A promotion that can take money off, and the lines it can (None: every line)."""

    promo: Promotion
    items: Items | None


def _money(p: Promotion) -> _Money | None:
    """What ``p`` can take money off, or None when it never does (points, messages)."""
    reward: Any = p.reward
    if reward.kind == "coupon":  # the coupon it honours takes money off
        if reward.discount.on == "order":
            return _Money(p, None)
        own = reward.items if reward.items is not None and reward.items.any else None
        return _Money(p, own or p.when.items)
    if reward.kind == "stamp":
        reward = reward.reward
    if reward.kind not in ("percent", "amount", "price", "free_item"):
        return None
    if getattr(reward, "on", None) == "order":
        return _Money(p, None)
    return _Money(p, p.when.items)


def _lines_may_meet(a: Items | None, b: Items | None) -> bool:
    """Whether one line could be in both scopes (None: every eligible line)."""
    if a is None or b is None or not a.any or not b.any:
        return True
    # A line has one sku and one category, so scopes that name only skus (or only
    # categories) meet only through a shared one; tags, or a mix, may always meet.
    for field in ("skus", "categories"):
        only = all(
            bool(getattr(x, field)) and not any(getattr(x, f) for f in _OTHERS[field])
            for x in (a, b)
        )
        if only:
            return bool(set(getattr(a, field)) & set(getattr(b, field)))
    return True


_OTHERS = {"skus": ("categories", "tags"), "categories": ("skus", "tags")}


def _may_meet(a: Promotion, b: Promotion) -> bool:
    """Whether two promotions can apply to one receipt (time, place, tier)."""
    low = datetime.min
    high = datetime.max
    if (a.valid.from_ or low) > (b.valid.to or high) or (b.valid.from_ or low) > (
        a.valid.to or high
    ):
        return False
    stores_a, stores_b = set(a.where.stores), set(b.where.stores)
    if "*" not in stores_a and "*" not in stores_b and not stores_a & stores_b:
        return False
    if a.where.tills and b.where.tills and not set(a.where.tills) & set(b.where.tills):
        return False
    if a.who.tiers and b.who.tiers and not set(a.who.tiers) & set(b.who.tiers):
        return False
    days_a = set(a.schedule.days) if a.schedule is not None else set()
    days_b = set(b.schedule.days) if b.schedule is not None else set()
    return not (days_a and days_b and not days_a & days_b)


def _equal_priorities(file: ProgramFile) -> list[str]:
    """Pairs of money-off promotions whose order is decided by their ids alone."""
    index = {p.id: i for i, p in enumerate(file.promotions)}
    by_priority: dict[int, list[_Money]] = {}
    for p in file.promotions:
        m = _money(p) if p.enabled else None
        if m is not None:
            by_priority.setdefault(p.priority, []).append(m)
    pairs = (pair for group in by_priority.values() for pair in combinations(group, 2))
    out: list[str] = []
    for one, two in pairs:
        a, b = one.promo, two.promo
        if not _may_meet(a, b):
            continue
        contest = a.stacking == "best" and b.stacking == "best"
        # Two `best` ones compete for the whole receipt; any other pair meets on a line.
        if not contest and not _lines_may_meet(one.items, two.items):
            continue
        first, second = sorted((a, b), key=lambda p: p.id)
        how = (
            "a tie in their `best` contest goes to the one applied first"
            if contest
            else "the first changes what the second can take off"
        )
        out.append(
            f"promotions[{index[second.id]}].priority: {second.id!r} has the same priority "
            f"({a.priority}) as {first.id!r} (promotions[{index[first.id]}]) and both can take "
            "money off one receipt; at equal priority the engine applies them in id order, "
            f"character by character ({first.id!r} first), and {how}: the result depends on "
            "how the ids are spelled. Give the one that should go first a higher priority"
        )
    return out
