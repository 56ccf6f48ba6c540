"""The cashier's hint panel at ``/``: one self-contained page fed by ``GET /v1/events``.

A till may have no internet, so the page carries its own CSS and script and names no
external URL (no CDN, no web fonts). It needs no keyboard and nothing to click: it opens a
Server-Sent-Events stream, draws the latest state, and reconnects by itself when the agent
restarts. The chrome's labels are Russian or English (``[till] language``); the hint texts
come already localized from the rules engine. Event data is put on the page with
``textContent`` only, never parsed as HTML.

The page itself is ``static/panel.html``, package data read with :mod:`importlib.resources`
(so an editable install, a wheel and the frozen bundle all find it; pyproject's
package-data and build/bundle.py's ``PACKAGE_DATA`` ship it). It is a template with
``{{name}}`` placeholders: every key of :data:`LABELS` (HTML-escaped), ``lang``, ``store``
and ``till_id`` (escaped), and ``config``, the JSON the script reads. This module holds the
rest: the labels in both languages and the filling in.
"""

from __future__ import annotations

import functools
import html
import json
import re
from importlib import resources
from typing import Any

# How long a finished sale (confirmed, cancelled, refunded) stays on the screen.
CLEAR_AFTER_SECONDS = 20

LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "title": "Подсказки кассиру",
        "till": "касса",
        "conn_connecting": "Подключение…",
        "conn_open": "На связи",
        "conn_lost": "Нет связи с агентом — переподключаюсь…",
        "conn_refused": "Агент не принял токен: откройте панель по адресу /?token=…",
        "customer": "Покупатель",
        "no_card": "Карта не предъявлена",
        "no_card_help": "Проведите карту или отсканируйте её код",
        "balance": "Баланс",
        # The card's points not held by an open receipt; what one basket can take is
        # "redeem_max" (the program's caps, e.g. half of the receipt).
        "redeemable": "Доступно",
        "pending": "В ожидании",
        "points": "б.",
        "blocked": "заблокирована",
        "hints": "Подсказки",
        "no_hints": "Подсказок нет",
        "receipt": "Чек",
        "total": "Итого",
        "discount": "Скидка",
        "redeem_max": "Можно на этот чек",
        "redeem_will": "Спишется",
        "redeem_done": "Списано",
        "accrue_will": "Начислится",
        "accrue_done": "Начислено",
        "returned": "Возврат",
        "points_returned": "Возвращено баллов",
        "points_reversed": "Снято баллов",
        "status_calculated": "рассчитан",
        "status_confirmed": "оплачен",
        "status_cancelled": "отменён",
        "status_refunded": "возврат",
        "offline": "Нет связи с офисом: касса работает офлайн",
        "program_file_error": "Файл программы с ошибкой: действует прежняя программа",
        "last_sync": "последняя синхронизация",
        "never": "ещё не было",
        "unsynced": "не отправлено записей",
        "read_rejected": "Карта не прочитана — проведите ещё раз",
        "dev_printer": "Принтер",
        "dev_card_reader": "Считыватель карт",
        "dev_scanner": "Сканер",
        "dev_intercept": "Перехват чеков",
        "dev_offline": "не на связи",
        "dev_paper_out": "нет бумаги",
        "dev_cover_open": "открыта крышка",
        "dev_error": "ошибка",
        "kind_upsell": "Предложите",
        "kind_birthday": "Поздравьте",
        "kind_tier": "Уровень",
        "kind_coupon": "Купон",
        "kind_ask_card": "Карта",
        "kind_offline": "Офлайн",
        "kind_device": "Устройство",
        "kind_warning": "Внимание",
        "kind_promo": "Акция",
        "kind_balance": "Баллы",
        "kind_greeting": "Покупатель",
    },
    "en": {
        "title": "Cashier hints",
        "till": "till",
        "conn_connecting": "Connecting…",
        "conn_open": "Connected",
        "conn_lost": "No connection to the agent — retrying…",
        "conn_refused": "The agent refused the token: open the panel as /?token=…",
        "customer": "Customer",
        "no_card": "No card presented",
        "no_card_help": "Swipe the card or scan its code",
        "balance": "Balance",
        "redeemable": "Available",
        "pending": "Pending",
        "points": "pts",
        "blocked": "blocked",
        "hints": "Hints",
        "no_hints": "No hints",
        "receipt": "Receipt",
        "total": "Total",
        "discount": "Discount",
        "redeem_max": "Redeemable on this receipt",
        "redeem_will": "To redeem",
        "redeem_done": "Redeemed",
        "accrue_will": "To earn",
        "accrue_done": "Earned",
        "returned": "Returned",
        "points_returned": "Points given back",
        "points_reversed": "Points taken back",
        "status_calculated": "calculated",
        "status_confirmed": "paid",
        "status_cancelled": "cancelled",
        "status_refunded": "refunded",
        "offline": "No connection to head office: the till works offline",
        "program_file_error": "The program file has errors: the last good program stays",
        "last_sync": "last sync",
        "never": "never",
        "unsynced": "entries not sent",
        "read_rejected": "The card was not read — swipe it again",
        "dev_printer": "Printer",
        "dev_card_reader": "Card reader",
        "dev_scanner": "Scanner",
        "dev_intercept": "Receipt interception",
        "dev_offline": "offline",
        "dev_paper_out": "out of paper",
        "dev_cover_open": "cover open",
        "dev_error": "error",
        "kind_upsell": "Suggest",
        "kind_birthday": "Congratulate",
        "kind_tier": "Tier",
        "kind_coupon": "Coupon",
        "kind_ask_card": "Card",
        "kind_offline": "Offline",
        "kind_device": "Device",
        "kind_warning": "Attention",
        "kind_promo": "Promotion",
        "kind_balance": "Points",
        "kind_greeting": "Customer",
    },
}


def panel_html(
    *,
    language: str,
    till: str,
    store: str,
    card_session_seconds: int = 120,
    clear_after_seconds: int = CLEAR_AFTER_SECONDS,
) -> str:
    """The hint panel page for one till, its chrome in ``language`` (``ru`` or ``en``)."""
    try:
        labels = LABELS[language]
    except KeyError:
        raise ValueError(f"no hint panel labels for language {language!r}") from None
    config: dict[str, Any] = {
        "lang": language,
        "labels": labels,
        "session_seconds": card_session_seconds,
        "clear_after_seconds": min(clear_after_seconds, card_session_seconds),
    }
    # JSON inside <script>: no "</script>" or "<!--" can be formed from config text.
    blob = json.dumps(config, ensure_ascii=False)
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    values = {k: html.escape(v) for k, v in labels.items()}
    values |= {"lang": language, "store": html.escape(store), "till_id": html.escape(till)}
    values["config"] = blob
    # One pass: a "{{...}}" inside a store's or till's name is text, never a placeholder.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], page_template())


_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@functools.cache
def page_template() -> str:
    """The panel page as shipped, its ``{{name}}`` placeholders not filled in yet.

    Read on first use (never at import) and kept: the file does not change under a running
    agent.
    """
    page = resources.files(__name__.rpartition(".")[0]) / "static" / "panel.html"
    try:
        return page.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{page}: the hint panel page is missing from this installation"
        ) from exc
