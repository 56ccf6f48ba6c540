"""The cards CSV parser: ``read_values`` (the bulk load's plain tuples) and ``read_rows``
(records) read the same rows with the same checks and the same ``row N: reason`` texts."""

from __future__ import annotations

import io
from datetime import date

from tillgate.core.cardfile import read_rows, read_values
from tillgate.core.cards import mask

PATTERN = r"^\d{13}$"
ANNA, BORIS, VERA, GLEB = "2900000000011", "2900000000028", "2900000000035", "2900000000042"


def _both(text: str) -> tuple[list[tuple[object, ...]], list[str], list[str]]:
    """The values ``read_values`` yields, and both readers' problems."""
    p1: list[str] = []
    p2: list[str] = []
    values = list(read_values(io.StringIO(text, newline=""), number_pattern=PATTERN, problems=p1))
    rows = list(read_rows(io.StringIO(text, newline=""), number_pattern=PATTERN, problems=p2))
    assert [v[:2] for v in values] == [(n, r.number) for n, r in rows]
    for v, (_, r) in zip(values, rows, strict=True):
        assert v[2:] == (
            r.holder,
            r.phone,
            r.birthday.isoformat() if r.birthday else None,
            r.tier,
            r.segments,
            r.clubs,
            r.status,
            r.opening_balance,
        )
    return values, p1, p2


def test_values_are_the_records_written_any_usual_way() -> None:
    text = (
        "\ufeff number ,holder,phone,birthday,tier,segments,clubs,status,balance\n"
        f"{ANNA}, Анна ,+79161234567,1975-03-12,gold,pensioners; ,wine-club,,100\n"
        f'2900-0000-0002 8,Борис,8 (916) 123-45-67,19750312,,"a,b",,blocked,007\n'
        "\n"  # a blank line is no row (nor counted as one)
        f"{VERA},Вера,,2024-W01-1,,,,new,1_000\n"
        f"{GLEB}\n"  # a short row: the other columns are empty
    )
    values, problems, same = _both(text)
    assert problems == same == []
    assert values == [
        (2, ANNA, "Анна", "+79161234567", "1975-03-12", "gold", ("pensioners",), ("wine-club",),
         "active", 100),
        (3, BORIS, "Борис", "+79161234567", "1975-03-12", None, ("a", "b"), (), "blocked", 7),
        (4, VERA, "Вера", None, "2024-01-01", None, (), (), "new", 1000),
        (5, GLEB, "", None, None, None, (), (), "active", 0),
    ]  # fmt: skip
    assert date.fromisoformat(values[2][4] or "") == date(2024, 1, 1)


def test_bad_rows_have_the_same_reasons_and_good_rows_go_on() -> None:
    text = (
        "number,holder,phone,birthday,status,balance,colour,holder\n"
        f"{ANNA},x,+7916,,,,,Анна\n"
        f"{BORIS},,,1975-02-30,,,,\n"
        f"{VERA},,,,gone,,,\n"
        f"{GLEB},,,,,1.5,,\n"
        f"{GLEB},,,,,-3,,\n"
        f"{GLEB},,,,,ten,,\n"
        f"{GLEB},,,,,Infinity,,\n"  # no longer an OverflowError out of the reader
        "12,,,,,,,\n"
        f"{GLEB},,,,,2.0,,Глеб\n"
    )
    values, problems, same = _both(text)
    assert problems == same
    assert problems == [
        "header: unknown column 'colour' ignored",
        "row 2: phone '+7916' is not a phone number",
        "row 3: birthday '1975-02-30' is not YYYY-MM-DD",
        "row 4: status 'gone' is not one of active, new, blocked",
        "row 5: balance must be a whole number of points >= 0",
        "row 6: balance must be a whole number of points >= 0",
        "row 7: balance 'ten' is not a number",
        "row 8: balance must be a whole number of points >= 0",
        f"row 9: card number {mask('12')!r} does not match the card pattern",
    ]
    # A column named twice: its last one counts, as a dict of the row had it.
    assert values == [(10, GLEB, "Глеб", None, None, None, (), (), "active", 2)]


def test_a_number_met_twice_and_a_file_without_the_number_column() -> None:
    problems: list[str] = []
    text = f"number\n{ANNA}\n{ANNA}\n"
    seen: set[str] = set()
    got = list(read_values(io.StringIO(text), number_pattern=PATTERN, problems=problems, seen=seen))
    assert [v[:2] for v in got] == [(2, ANNA)]
    assert problems == [f"row 3: card {mask(ANNA)} appears twice"]
    problems = []
    assert (
        list(read_values(io.StringIO("holder\nx\n"), number_pattern=PATTERN, problems=problems))
        == []
    )
    assert problems == ["header: missing column(s) number"]
