"""What the cashier's screen says, in Russian or English: texts and their fixed order.

The texts are data (one table per language) so adding a language is adding a table.
Head office's own ``hint.text`` may contain ``{missing}``; it is filled by plain
replacement, so any other braces in it are printed as written. Head office's texts and tier
titles may be written per language (:mod:`.program_texts`); the till's language is chosen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal

from ..cards import mask
from ..money import fmt, to_kop
from .basket import Basket
from .catalog import Catalog
from .conditions import Shopper, failures, missing_total, missing_units
from .model import Context, Coupon, Hint, PrintItem
from .program import Program
from .program_texts import Language, pick
from .tiers import next_tier

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "greeting": "{holder}, {tier}",
        "greeting_plain": "{holder}",
        "card": "Карта {card}",
        "blocked": "Карта {card} заблокирована: баллы не начисляются и не списываются",
        "balance": "Баланс {balance} б., к списанию {redeemable}",
        "ask_card": "Спросите карту лояльности",
        "upsell_money": "Ещё {missing} {currency} до «{name}»",
        "upsell_units": "Ещё {missing} шт. до «{name}»",
        "tier": "Ещё {missing} {currency} покупок до уровня «{tier}»",
        "birthday": "День рождения {day}",
        "birthday_bonus": "День рождения {day}: +{points} б.",
        "coupon": "Будет напечатан купон: {title}",
        "rejected": "Купон {code} не принят: {reason}",
        "expired": "срок истёк",
        "unknown_promotion": "неизвестная акция",
        "not_applicable": "условия не выполнены",
        "duplicate": "купон этой акции уже есть",
        "redeem_minimum": "Списать можно не меньше {points} б.",
        "offline_hours": "Нет связи с офисом более {hours} ч: списание баллов недоступно",
        "offline_cap": "Нет связи с офисом: можно списать не более {points} баллов",
        "hq_silent": "Офис не ответил вовремя: чек рассчитан по офлайн-правилам",
    },
    "en": {
        "greeting": "{holder}, {tier}",
        "greeting_plain": "{holder}",
        "card": "Card {card}",
        "blocked": "Card {card} is blocked: no points earned or spent",
        "balance": "Balance {balance} pts, redeemable {redeemable}",
        "ask_card": "Ask for the loyalty card",
        "upsell_money": "{missing} {currency} more for “{name}”",
        "upsell_units": "{missing} more item(s) for “{name}”",
        "tier": "{missing} {currency} more in purchases to reach {tier}",
        "birthday": "Birthday {day}",
        "birthday_bonus": "Birthday {day}: +{points} pts",
        "coupon": "A coupon will be printed: {title}",
        "rejected": "Coupon {code} refused: {reason}",
        "expired": "expired",
        "unknown_promotion": "unknown promotion",
        "not_applicable": "conditions not met",
        "duplicate": "a coupon of this promotion is already in",
        "redeem_minimum": "At least {points} pts can be redeemed",
        "offline_hours": "No head-office sync for over {hours} h: points cannot be spent",
        "offline_cap": "Offline: at most {points} points can be spent",
        "hq_silent": "Head office did not answer in time: this receipt is priced offline",
    },
}

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CURRENCY_SIGNS = {"RUB": "₽"}

# Kinds in the order the cashier reads them: who is there first, what to say last.
# Most useful first. ``ask_card`` leads a sale with no card (it never meets ``greeting``):
# the card must be asked for before payment, or the sale earns nothing.
ORDER = (
    "greeting",
    "ask_card",
    "birthday",
    "balance",
    "upsell",
    "tier",
    "promo",
    "coupon",
    "warning",
)


def text(language: Language, key: str, **values: object) -> str:
    """A table text with its ``{placeholders}`` filled."""
    return TEXTS[language][key].format(**values)


def currency_sign(currency: str) -> str:
    """₽ for roubles; other currencies show their code."""
    return _CURRENCY_SIGNS.get(currency, currency)


def day(language: Language, when: date) -> str:
    """A birthday as a person writes it (no year)."""
    if language == "ru":
        return f"{when.day:02d}.{when.month:02d}"
    return f"{_MONTHS_EN[when.month - 1]} {when.day}"


def tier_title(program: Program, tier: str, language: Language) -> str:
    """What the cashier calls a tier: its ``title`` in the till's language, else its name
    with a capital letter ("platinum" → "Platinum")."""
    found = program.tier(tier)
    if found is not None and found.title is not None:
        return pick(found.title, language)
    return tier[:1].upper() + tier[1:]


def greeting(language: Language, *, holder: str, number: str, tier: str | None) -> Hint:
    """Who the card belongs to, with the tier's title."""
    name = holder or text(language, "card", card=mask(number))
    key = "greeting" if tier else "greeting_plain"
    return Hint(kind="greeting", text=text(language, key, holder=name, tier=tier))


def upsell(
    language: Language,
    *,
    own: str,
    name: str,
    promotion: str,
    missing: str,
    money: bool,
    currency: str,
) -> Hint:
    """A near miss: head office's text with ``{missing}`` filled, or a default one."""
    if own:  # head office's text, already in the till's language
        body = own.replace("{missing}", missing)
    else:
        key = "upsell_money" if money else "upsell_units"
        body = text(language, key, missing=missing, name=name, currency=currency_sign(currency))
    return Hint(kind="upsell", text=body, promotion=promotion)


def tier_progress(language: Language, *, missing_kop: int, tier: str, currency: str) -> Hint:
    """How much more spend reaches the next tier."""
    body = text(
        language, "tier", missing=fmt(missing_kop), tier=tier, currency=currency_sign(currency)
    )
    return Hint(kind="tier", text=body)


def birthday(language: Language, *, when: date, points: int) -> Hint:
    """The customer's birthday is near; with the bonus when one is given on this receipt."""
    if points:
        return Hint(
            kind="birthday",
            text=text(language, "birthday_bonus", day=day(language, when), points=points),
        )
    return Hint(kind="birthday", text=text(language, "birthday", day=day(language, when)))


def rejected_hint(language: Language, *, code: str, reason: str, promotion: str) -> Hint:
    """A coupon the till will not take, and why."""
    body = text(language, "rejected", code=code, reason=text(language, reason))
    return Hint(kind="warning", text=body, promotion=promotion or None)


def ordered(hints: Iterable[Hint]) -> tuple[Hint, ...]:
    """Hints in :data:`ORDER`; within a kind, in the order they were made."""
    rank = {kind: k for k, kind in enumerate(ORDER)}
    return tuple(sorted(hints, key=lambda h: rank.get(h.kind, len(ORDER))))


def upsells(
    *,
    catalog: Catalog,
    basket: Basket,
    shopper: Shopper,
    context: Context,
    matching: Mapping[int, tuple[int, ...]],
    held: Mapping[str, Coupon],
) -> list[Hint]:
    """Near misses: promotions whose only unmet condition is ``min_total`` or ``min_qty``.

    ``hint.near`` is money for a ``min_total`` miss and a number of units for a ``min_qty``
    miss. Smallest miss first (ties: application order).
    """
    language = context.language
    found: list[tuple[Decimal, int, Hint]] = []
    for rank in catalog.near:
        promo = catalog.ordered[rank]
        assert promo.hint is not None  # only promotions with a hint are in catalog.near
        scope = catalog.scope(rank, matching, basket)
        if not scope:
            continue  # none of its items in the basket: nothing to build on
        missed = failures(
            promo,
            scope=scope,
            basket=basket,
            shopper=shopper,
            context=context,
            has_coupon=promo.id in held,
        )
        if missed == ("min_total",):
            kop = missing_total(promo, scope, basket)
            if not 0 < kop <= to_kop(promo.hint.near):
                continue
            size, shown, money = Decimal(kop) / 100, fmt(kop), True
        elif missed == ("min_qty",):
            units = missing_units(promo, scope, basket)
            if not 0 < units <= promo.hint.near:
                continue
            size, shown, money = Decimal(units), str(units), False
        else:
            continue
        hint = upsell(
            language,
            own=pick(promo.hint.text, language),
            name=promo.name,
            promotion=promo.id,
            missing=shown,
            money=money,
            currency=catalog.program.currency,
        )
        found.append((size, rank, hint))
    return [hint for _, _, hint in sorted(found, key=lambda f: (f[0], f[1]))]


def cashier_hints(
    *,
    catalog: Catalog,
    basket: Basket,
    shopper: Shopper,
    context: Context,
    matching: Mapping[int, tuple[int, ...]],
    held: Mapping[str, Coupon],
    redeem_most: int,
    below_minimum: bool,
    birthday_points: int,
    messages: Sequence[tuple[str, str]],
    prints: Sequence[PrintItem],
    rejected: Sequence[tuple[Coupon, str]],
) -> list[Hint]:
    """Every hint of a receipt (unordered; :func:`ordered` sorts them for the screen).

    ``messages`` is (promotion id, text) of the ``message`` rewards that applied.
    """
    language, program = context.language, catalog.program
    out: list[Hint] = []
    customer, member = shopper.customer, shopper.member
    if customer is None:
        out.append(Hint(kind="ask_card", text=text(language, "ask_card")))
    else:
        out.append(
            greeting(
                language,
                holder=customer.holder,
                number=customer.number,
                tier=tier_title(program, shopper.tier, language) if shopper.tier else None,
            )
        )
        if member is None:
            out.append(
                Hint(kind="warning", text=text(language, "blocked", card=mask(customer.number)))
            )
    if member is not None:
        out.append(
            Hint(
                kind="balance",
                text=text(language, "balance", balance=member.balance, redeemable=redeem_most),
            )
        )
        if shopper.birthday is not None:
            out.append(birthday(language, when=shopper.birthday, points=birthday_points))
        following = next_tier(program, shopper.tier)
        if following is not None:
            missing = to_kop(following.min_spend) - to_kop(member.rolling_spend)
            if missing > 0:
                out.append(
                    tier_progress(
                        language,
                        missing_kop=missing,
                        tier=tier_title(program, following.name, language),
                        currency=program.currency,
                    )
                )
        if below_minimum:
            out.append(
                Hint(
                    kind="warning",
                    text=text(language, "redeem_minimum", points=program.min_redeem_points),
                )
            )
    out += upsells(
        catalog=catalog,
        basket=basket,
        shopper=shopper,
        context=context,
        matching=matching,
        held=held,
    )
    out += [Hint(kind="promo", text=body, promotion=pid) for pid, body in messages]
    out += [
        Hint(
            kind="coupon", text=text(language, "coupon", title=item.title), promotion=item.promotion
        )
        for item in prints
        if item.kind == "coupon"
    ]
    out += [
        rejected_hint(language, code=coupon.code, reason=reason, promotion=coupon.promotion_id)
        for coupon, reason in rejected
    ]
    return out


def offline_hint(*, reason: str, points: int, max_hours: int, language: Language) -> Hint:
    """Why points are limited offline: the cashier must be able to tell the customer.

    ``reason`` is the limit that decides (``max_hours``, ``per_card``, ``per_till``).
    """
    texts = TEXTS[language]
    if reason == "max_hours":
        text = texts["offline_hours"].format(hours=max_hours)
    else:
        text = texts["offline_cap"].format(points=points)
    return Hint(kind="offline", text=text)


def hq_silent_hint(*, language: Language) -> Hint:
    """Head office did not answer a hold in time: this one receipt was priced offline."""
    return Hint(kind="offline", text=TEXTS[language]["hq_silent"])
