"""The product store reads back every list of strings it wrote (its fast path for the
common forms agrees with the JSON parser), and a product with any text survives a look-up."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tillgate.agent.store.products import _json, _list


@given(st.lists(st.text(), max_size=4).map(tuple))
def test_a_stored_list_reads_back_as_written(items: tuple[str, ...]) -> None:
    assert _list(_json(items)) == items


def test_lists_written_otherwise_are_read_by_the_parser() -> None:
    for raw in ('["a","b"]', '[ "a" ]', '["a\\"b"]', '["x\\", \\"y"]', '["\\u0451"]'):
        assert _list(raw) == tuple(json.loads(raw)), raw


def test_a_basket_longer_than_one_query_is_looked_up_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tillgate.agent.store import products as store
    from tillgate.agent.store.db import Database
    from tillgate.core.products import Product

    goods = [Product(sku=f"S{i}", name=f"Товар {i}", category="c") for i in range(1200)]
    db = Database(tmp_path / "till.sqlite3")
    with db.write() as conn:
        store.replace_all(conn, goods, version="v")
        lookup = store.SqliteProducts(conn)
        codes = lookup.by_codes([g.sku for g in goods])
        names = lookup.by_names([f"товар{i}" for i in range(1200)])
    db.close()
    assert [codes[g.sku] for g in goods] == [[g] for g in goods]
    assert [names[f"товар{i}"] for i in range(1200)] == [[g] for g in goods]
