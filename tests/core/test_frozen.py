"""``core/frozen.py`` ``quick_init``: the same record as the dataclass's own ``__init__``."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar

import pytest

from tillgate.agent.store import sales
from tillgate.agent.usecases import request
from tillgate.core import productmatch
from tillgate.core.frozen import quick_init
from tillgate.core.rules import engine, model


def _shapes() -> tuple[type, type]:
    """The same class twice, the second with quick_init."""

    def make() -> type:
        @dataclass(frozen=True)
        class Base:
            a: int
            b: str = "b"

        @dataclass(frozen=True)
        class Shape(Base):
            kind: ClassVar[str] = "shape"
            c: tuple[int, ...] = ()
            d: list[int] = field(default_factory=list)
            e: int = field(default=5, init=False)
            f: list[str] = field(default_factory=lambda: ["x"], init=False)
            g: int = field(default=0, kw_only=True)
            h: str = field(kw_only=True)
            seen: list[str] = field(default_factory=list, compare=False, repr=False)

            def __post_init__(self) -> None:
                self.seen.append(f"post {self.a}")

        return Shape

    return make(), quick_init(make())


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {"h": "h"}),
    ((1, "x", (2,), [3]), {"g": 7, "h": "h"}),
    ((), {"a": 1, "b": "y", "h": "h", "d": [1]}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_a_quick_init_makes_the_record_the_dataclass_makes(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    plain, quick = _shapes()
    a, b = plain(*args, **kwargs), quick(*args, **kwargs)
    assert vars(a) == vars(b)
    assert repr(a).replace("Shape", "") == repr(b).replace("Shape", "")
    assert b.seen == ["post 1"]  # __post_init__ ran once
    assert b.f is not quick(*args, **kwargs).f  # each its own default made by the factory
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.a = 2  # type: ignore[misc]
    assert dataclasses.replace(b, a=9).a == 9


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {"h": "h"}),
        ((1,), {}),
        ((1,), {"h": "h", "zz": 1}),
        ((1, "b", (), [], [], 1), {"h": "h"}),
    ],
)
def test_a_bad_call_is_refused_as_the_dataclass_refuses_it(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    plain, quick = _shapes()
    with pytest.raises(TypeError) as theirs:
        plain(*args, **kwargs)
    with pytest.raises(TypeError) as ours:
        quick(*args, **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_the_signature_is_the_dataclass_s() -> None:
    plain, quick = _shapes()
    assert str(inspect.signature(quick.__init__)) == str(inspect.signature(plain.__init__))


def test_what_it_cannot_make_the_same_is_refused_when_the_class_is_defined() -> None:
    @dataclass
    class Loose:
        a: int

    @dataclass(frozen=True, slots=True)
    class Slotted:
        a: int

    @dataclass(frozen=True)
    class WithInitVar:
        a: int
        scale: InitVar[int] = 1

    for cls in (Loose, Slotted, WithInitVar):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)


def test_the_records_of_a_sale_are_hashable_and_equal_as_before() -> None:
    """The classes that use it (a calculate's records, line by line) compare and hash by
    value, as frozen dataclasses do."""
    from decimal import Decimal

    one = model.Line(index=0, sku="a", qty=Decimal(1), price=Decimal("9.90"))
    assert one == model.Line(index=0, sku="a", qty=Decimal(1), price=Decimal("9.90"))
    assert hash(one) == hash(model.Line(index=0, sku="a", qty=Decimal(1), price=Decimal("9.90")))
    assert dataclasses.replace(one, sku="b").sku == "b"
    for cls in (
        model.Line,
        model.LineResult,
        model.Effect,
        engine.Plan,
        engine.Outcome,
        productmatch.LineIn,
        productmatch.Resolution,
        request.SaleLine,
        sales.PaidLine,
    ):
        assert cls.__init__.__code__.co_filename == "<string>"
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


def test_fields_named_like_its_own_names_are_kept_apart() -> None:
    """The generated ``__init__``'s own names never meet a field's, whatever it is called."""

    @quick_init
    @dataclass(frozen=True)
    class Odd:
        _q: int
        _q_0: str = "d"
        _q__none: list[int] = field(default_factory=list)
        _q___: int = 0

    made = Odd(1, _q__none=[2], _q___=4)
    assert (made._q, made._q_0, made._q__none, made._q___) == (1, "d", [2], 4)
    assert Odd(3)._q__none == []
