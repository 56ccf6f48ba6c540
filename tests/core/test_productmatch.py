"""How a line gets its category (core/productmatch.py): the order POS → sku → name → rule →
unmatched, ambiguity, cut names, flags and tags; and the till's SQLite product list answers
every look-up as a plain list of products does."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tillgate.agent.store import products as store
from tillgate.agent.store.db import Database
from tillgate.core.productmatch import LineIn, Policy, resolve, resolve_all, rule_category
from tillgate.core.products import Product, normalise_name
from tillgate.core.rules.program import CategoryMatch


class ListLookup:
    """A product list as a plain list: the obvious reading of ProductLookup."""

    def __init__(self, products: list[Product], version: str | None = "v1") -> None:
        self.products = sorted(products, key=lambda p: p.sku)
        self._version = version

    @property
    def version(self) -> str | None:
        return self._version

    def by_code(self, code: str) -> list[Product]:
        return [p for p in self.products if code == p.sku or code in p.barcodes]

    def by_name(self, key: str) -> list[Product]:
        return [p for p in self.products if key and key in p.name_keys()]

    def by_name_prefix(self, key: str, *, limit: int = 2) -> list[Product]:
        found = [p for p in self.products if key and any(k.startswith(key) for k in p.name_keys())]
        return found[:limit]

    def by_codes(self, codes: Collection[str], *, limit: int = 2) -> dict[str, list[Product]]:
        out = {}
        for code in codes:
            # the product whose own sku the code is first
            found = sorted(self.by_code(code), key=lambda p: (p.sku != code, p.sku))[:limit]
            if found:
                out[code] = found
        return out

    def by_names(self, keys: Collection[str], *, limit: int = 2) -> dict[str, list[Product]]:
        return {k: got[:limit] for k in keys if (got := self.by_name(k))}


MILK = Product(sku="100", name="Молоко 3,2% 1 л", category="dairy", barcodes=("4600000000011",))
YAVA = Product(
    sku="200",
    name="Сигареты «Ява Золотая» классические",
    category="tobacco",
    age_restricted=True,
    aliases=("ЯВА ЗОЛОТАЯ",),
)
WINE = Product(sku="300", name="Вино Шато красное сухое 0,75", category="alcohol", no_loyalty=True)
BREAD_A = Product(sku="400", name="Хлеб", category="bakery", tags=("local",))
BREAD_B = Product(sku="401", name="хлеб", category="bakery-frozen")
KEFIR = Product(sku="500", name="Кефир 1%", category="dairy", tags=("promo-week",))
LOOKUP = ListLookup([MILK, YAVA, WINE, BREAD_A, BREAD_B, KEFIR])
RULES = (
    CategoryMatch(pattern=r"\bсигарет", category="tobacco"),
    CategoryMatch(pattern=r"\b(вино|водка|пиво)\b", category="alcohol"),
)
POLICY = Policy(rules=RULES)


def test_the_pos_category_wins_and_the_product_list_still_says_no_loyalty() -> None:
    r = resolve(LineIn(sku="300", name="x", category="grocery"), LOOKUP, POLICY)
    assert (r.category, r.match, r.no_loyalty, r.sku) == ("grocery", "pos", True, "300")
    r = resolve(LineIn(sku="999", name="Вино", category="grocery"), LOOKUP, POLICY)
    assert (r.category, r.match, r.no_loyalty) == ("grocery", "pos", False)


def test_a_sku_or_a_barcode_finds_its_product_and_the_products_sku() -> None:
    r = resolve(LineIn(sku="100", name="whatever"), LOOKUP, POLICY)
    assert (r.category, r.match, r.sku) == ("dairy", "sku", "100")
    r = resolve(LineIn(sku="4600000000011", name=""), LOOKUP, POLICY)
    assert (r.category, r.match, r.sku) == ("dairy", "sku", "100")


def test_a_name_matches_whatever_its_case_spacing_yo_and_punctuation() -> None:
    for printed in ("МОЛОКО 3.2% 1Л", "молоко  3,2 %  1 л", "Молоко 3-2 1 л"):
        r = resolve(LineIn(sku=None, name=printed), LOOKUP, POLICY)
        assert (r.category, r.match, r.sku) == ("dairy", "name", "100"), printed
    # an alias; Ё and Е are one letter
    r = resolve(LineIn(sku=None, name="ява золотая"), LOOKUP, POLICY)
    assert (r.category, r.match) == ("tobacco", "name")


def test_a_sku_nobody_has_falls_back_to_the_name() -> None:
    r = resolve(LineIn(sku="0000", name="Кефир 1%"), LOOKUP, POLICY)
    assert (r.category, r.match, r.sku, r.tags) == ("dairy", "name", "500", ("promo-week",))


def test_a_name_two_products_have_is_ambiguous_and_the_rules_or_the_policy_decide() -> None:
    r = resolve(LineIn(sku=None, name="ХЛЕБ"), LOOKUP, POLICY)
    assert (r.category, r.match, r.no_loyalty, r.sku) == (None, "ambiguous", False, None)
    r = resolve(LineIn(sku=None, name="ХЛЕБ"), LOOKUP, Policy(unmatched_items="exclude"))
    assert (r.match, r.no_loyalty) == ("ambiguous", True)
    rule = Policy(rules=(CategoryMatch(pattern=r"хлеб", category="bakery"),))
    r = resolve(LineIn(sku=None, name="ХЛЕБ"), LOOKUP, rule)
    assert (r.category, r.match) == ("bakery", "rule")


def test_a_name_cut_at_the_papers_edge_matches_the_one_product_it_begins() -> None:
    cut = "СИГАРЕТЫ ЯВА ЗОЛОТАЯ КЛАС"
    r = resolve(LineIn(sku=None, name=cut, may_be_cut=True), LOOKUP, Policy())
    assert (r.category, r.match, r.no_loyalty) == ("tobacco", "name", True)
    # The same words on a line that did not fill the paper are a name nobody has.
    r = resolve(LineIn(sku=None, name=cut), LOOKUP, Policy())
    assert r.match == "unmatched"
    # A POS-API name is never taken for a cut one, nor a short printed one.
    r = resolve(LineIn(sku="x", name="Молоко", may_be_cut=False), LOOKUP, Policy())
    assert r.match == "unmatched"
    assert resolve(LineIn(sku=None, name="Мол", may_be_cut=True), LOOKUP, Policy()).match == (
        "unmatched"
    )


def test_a_cut_name_two_products_begin_with_is_ambiguous() -> None:
    lookup = ListLookup([BREAD_A, Product(sku="9", name="Хлебцы ржаные", category="bakery")])
    r = resolve(LineIn(sku=None, name="ХЛЕБЦЫ", may_be_cut=True), lookup, Policy())
    assert (r.category, r.match) == ("bakery", "name")  # one product begins "хлебцы"
    two = ListLookup([*lookup.products, Product(sku="8", name="Хлебцы гречневые", category="x")])
    r = resolve(LineIn(sku=None, name="ХЛЕБЦЫ", may_be_cut=True), two, Policy())
    assert r.match == "ambiguous"


def test_rules_are_searched_in_the_names_words_first_match_wins() -> None:
    assert rule_category("Сигареты Парламент", RULES) == "tobacco"
    assert rule_category("ВИНО «Кагор», 0,75", RULES) == "alcohol"
    assert rule_category("Виноград", RULES) is None  # \b: a word, not a part of one
    both = (CategoryMatch(pattern="пиво", category="beer"), *RULES)
    assert rule_category("Пиво светлое", both) == "beer"
    r = resolve(LineIn(sku=None, name="Сигареты Парламент"), LOOKUP, POLICY)
    assert (r.category, r.match, r.no_loyalty) == ("tobacco", "rule", False)


def test_unmatched_lines_earn_or_are_excluded_as_the_program_says() -> None:
    line = LineIn(sku=None, name="Гвозди 100 шт")
    assert resolve(line, LOOKUP, POLICY).no_loyalty is False
    r = resolve(line, LOOKUP, Policy(rules=RULES, unmatched_items="exclude"))
    assert (r.category, r.match, r.no_loyalty) == (None, "unmatched", True)


def test_age_restricted_is_no_loyalty_unless_the_program_allows_it() -> None:
    line = LineIn(sku="200", name="")
    assert resolve(line, LOOKUP, Policy()).no_loyalty is True
    assert resolve(line, LOOKUP, Policy(age_restricted_no_loyalty=False)).no_loyalty is False
    # no_loyalty itself is not the program's to lift
    wine = LineIn(sku="300", name="")
    assert resolve(wine, LOOKUP, Policy(age_restricted_no_loyalty=False)).no_loyalty is True


def test_a_products_tags_join_the_lines_own_once() -> None:
    r = resolve(LineIn(sku="500", name="", tags=("promo-week", "pos")), LOOKUP, POLICY)
    assert r.tags == ("promo-week", "pos")
    r = resolve(LineIn(sku="400", name="", tags=("pos",)), LOOKUP, POLICY)
    assert r.tags == ("pos", "local")


def test_a_barcode_two_products_share_goes_to_its_own_sku_else_to_the_name() -> None:
    a = Product(sku="A1", name="Сок яблочный", category="juice", barcodes=("777",))
    b = Product(sku="B1", name="Сок вишнёвый", category="juice-cherry", barcodes=("777",))
    c = Product(sku="777", name="Вода", category="water")
    lookup = ListLookup([a, b])
    r = resolve(LineIn(sku="777", name="Сок вишневый"), lookup, Policy())
    assert (r.category, r.match, r.sku) == ("juice-cherry", "name", "B1")
    assert resolve(LineIn(sku="777", name="?"), lookup, Policy()).match == "ambiguous"
    r = resolve(LineIn(sku="777", name="?"), ListLookup([a, b, c]), Policy())
    assert (r.category, r.match) == ("water", "sku")


# ---------------------------------------------------------------- the SQLite store agrees


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    db = Database(tmp_path_factory.mktemp("products") / "till.sqlite3")
    with db.write() as c:
        yield c


WORDS = ["Молоко", "молоко", "Хлеб", "Хлебцы", "Ёлка", "Елка", "сыр", "Сыр-", "3,2%", "1 л", "ява"]
names = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
products = st.lists(
    st.builds(
        Product,
        sku=st.sampled_from(["1", "2", "3", "4", "5"]),
        name=names,
        category=st.sampled_from(["a", "b"]),
        barcodes=st.lists(st.sampled_from(["11", "12", "2"]), max_size=2).map(tuple),
        aliases=st.lists(names, max_size=1).map(tuple),
        tags=st.lists(st.sampled_from(["t", "u"]), max_size=2, unique=True).map(tuple),
        no_loyalty=st.booleans(),
        age_restricted=st.booleans(),
    ),
    max_size=5,
    unique_by=lambda p: p.sku,
)
lines = st.builds(
    LineIn,
    sku=st.none() | st.sampled_from(["1", "2", "11", "12", "9"]),
    name=names | st.sampled_from(["", "мол", "хлебц", "молоко3"]),
    category=st.none() | st.just("pos-cat"),
    may_be_cut=st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(products, st.lists(lines, min_size=1, max_size=4), st.sampled_from(["earn", "exclude"]))
def test_the_sqlite_product_list_resolves_as_a_plain_list_does(
    conn: sqlite3.Connection, goods: list[Product], some: list[LineIn], unmatched: str
) -> None:
    conn.execute("SAVEPOINT t")
    try:
        store.replace_all(conn, goods, version="h1")
        sqlite = store.SqliteProducts(conn)
        plain = ListLookup(goods, version="h1")
        policy = Policy(rules=RULES, unmatched_items=unmatched)  # type: ignore[arg-type]
        assert sqlite.version == "h1"
        for line in some:
            assert resolve(line, sqlite, policy) == resolve(line, plain, policy), line
            key = normalise_name(line.name)
            assert sqlite.by_names([key], limit=10**6) == plain.by_names([key], limit=10**6)
            if line.sku:
                assert sqlite.by_codes([line.sku]) == plain.by_codes([line.sku])
            assert sqlite.by_names([key]) == plain.by_names([key])
        assert resolve_all(some, sqlite, policy) == tuple(resolve(ln, plain, policy) for ln in some)
    finally:
        conn.execute("ROLLBACK TO t")
        conn.execute("RELEASE t")
