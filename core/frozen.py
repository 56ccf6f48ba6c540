"""A frozen dataclass built as fast as a plain one: :func:`quick_init`.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own
``__setattr__`` refuses): ≈ 2.5× the time of a plain one's (3.9 against 1.5 µs for a
10-field line here). A 50-line calculate builds some 350 such records (lines as the POS
sent them, as matched, as the engine priced them, as recorded): 10.9 % of its samples by
py-spy, ≈ 4 % of its CPU saved (docs/performance.md, "scale: where the time goes",
latency). :func:`quick_init` gives the
class an ``__init__`` that writes the instance's ``__dict__`` directly; everything else
stays the dataclass's (frozen afterwards, ``replace``, equality, hashing, ``repr``).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


class _Factory:
    """A field with a default factory that was not given (shown as the dataclass shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_NO_VALUE = _Factory()


def quick_init(cls: type[T]) -> type[T]:
    """Replace a frozen dataclass's ``__init__`` with one of the same signature and effect
    that stores the fields straight into the instance's ``__dict__``.

    For frozen dataclasses without ``__slots__`` or init-only variables: ``TypeError``
    otherwise, when the class is defined, as when the new ``__init__``'s parameters would
    differ from the dataclass's own. ``__post_init__`` is called as the dataclass's own
    ``__init__`` calls it.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or not params.init:
        raise TypeError(f"{cls.__name__}: quick_init is for frozen dataclasses with __init__")
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init needs instances with a __dict__")
    every = dataclasses.fields(cls)  # type: ignore[arg-type]
    taken = {f.name for f in every}
    mark = "_q"  # the generated names' prefix: no field's name starts with it
    while any(name.startswith(mark) for name in taken):
        mark += "_"
    names: dict[str, Any] = {f"{mark}none": _NO_VALUE}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for i, f in enumerate(every):  # in the fields' order, as the dataclass's __init__ goes
        has_default = f.default is not dataclasses.MISSING
        factory = f.default_factory is not dataclasses.MISSING
        if has_default:
            names[f"{mark}{i}"] = f.default
        elif factory:
            names[f"{mark}{i}"] = f.default_factory
        if not f.init:  # never given: a factory's value is stored, a default stays the class's
            if factory:
                body.append(f"    {mark}d[{f.name!r}] = {mark}{i}()")
            continue
        if has_default:
            param, value = f"{f.name}={mark}{i}", f.name
        elif factory:
            param = f"{f.name}={mark}none"
            value = f"{mark}{i}() if {f.name} is {mark}none else {f.name}"
        else:
            param, value = f.name, f.name
        (keyword if f.kw_only else positional).append(param)
        body.append(f"    {mark}d[{f.name!r}] = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({signature}):\n    {mark}d = self.__dict__\n" + "\n".join(body)
    source += "\n    return None\n"
    exec(source, names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    if _shape(init) != _shape(cls.__init__):  # an InitVar, say: a parameter no field has
        raise TypeError(f"{cls.__name__}: quick_init cannot give it the same __init__")
    type.__setattr__(cls, "__init__", init)  # (mypy: a method is not assigned to)
    return cls


def _shape(init: Any) -> list[tuple[str, Any, bool]]:
    """Each parameter's name, kind and whether it has a default."""
    return [
        (p.name, p.kind, p.default is not inspect.Parameter.empty)
        for p in inspect.signature(init).parameters.values()
    ]
