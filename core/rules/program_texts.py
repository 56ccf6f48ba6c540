"""Texts a promotion shows people, in one language or per language.

Wherever the program file has a user-facing text (``hint.text``, ``print.text``, a
``message`` reward's ``text``, a coupon's ``title``, a tier's ``title``), head office may
write one string, used whatever the till's language, or a table with a text per language::

    hint = { near = "200.00", text = { ru = "Ещё {missing} ₽ — скидка 10%",
                                       en = "{missing} ₽ more for 10% off" } }

:func:`pick` chooses the till's language, else the other one: a chain that writes only
Russian still shows something on an English till. Pure: no I/O.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, StringConstraints, Tag, model_validator

Language = Literal["ru", "en"]
LANGUAGES: tuple[Language, ...] = ("ru", "en")


class Texts(BaseModel):
    """A text per language (``{ ru = "…", en = "…" }``); at least one is needed."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    ru: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    en: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> Texts:
        if self.ru is None and self.en is None:
            raise ValueError("write the text in at least one language: ru or en")
        return self


class ShortTexts(Texts):
    """Per-language texts of a title (coupons, tiers): as long as a one-language title."""

    ru: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    en: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class HintTexts(Texts):
    """Per-language texts of a near-miss hint: as long as a one-language hint."""

    ru: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    en: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


TEXT_FORMS = ("plain", "per_language")


def _form(value: Any) -> str:
    # Which form a text is written in; it decides which one validates it, so an error
    # names what is wrong with the form used, not that it is not the other one too.
    return "per_language" if isinstance(value, (dict, Texts)) else "plain"


# The plain string form stays valid everywhere; the table is the per-language form.
LongText = Annotated[
    Annotated[Annotated[str, StringConstraints(min_length=1, max_length=2000)], Tag("plain")]
    | Annotated[Texts, Tag("per_language")],
    Discriminator(_form),
]
Title = Annotated[
    Annotated[Annotated[str, StringConstraints(min_length=1, max_length=200)], Tag("plain")]
    | Annotated[ShortTexts, Tag("per_language")],
    Discriminator(_form),
]
HintText = Annotated[
    Annotated[Annotated[str, StringConstraints(max_length=500)], Tag("plain")]
    | Annotated[HintTexts, Tag("per_language")],
    Discriminator(_form),
]


def pick(text: str | Texts, language: Language) -> str:
    """The text for ``language``: a plain string as written, else that language's, else
    the other language's."""
    if isinstance(text, str):
        return text
    own = text.ru if language == "ru" else text.en
    other = text.en if language == "ru" else text.ru
    return own if own is not None else (other or "")
