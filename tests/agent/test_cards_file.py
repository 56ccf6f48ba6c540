"""A standalone till's cards file: read row by row, bad rows reported, an unchanged file
not read again, a file that cannot be read to its end changing nothing."""

from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path

import pytest

from tillgate.agent.daemon import FileWatcher, build_service
from tillgate.agent.store import cards as card_store
from tillgate.agent.store import ledger
from tillgate.agent.usecases import TillService
from tillgate.core import errors
from tillgate.core.cardfile import CardRecord
from tillgate.core.cards import mask
from tillgate.core.config import load_config

PROGRAM = '[program]\nname = "Магазин у дома"\n'
ANNA, BORIS, VERA = "2900000000011", "2900000000028", "2900000000035"


def till(tmp: Path, program: str = PROGRAM) -> tuple[TillService, FileWatcher]:
    """A standalone till over ``tmp`` (its data file kept there across calls)."""
    (tmp / "program.toml").write_text(program, encoding="utf-8")
    cfg = tmp / "config.toml"
    cfg.write_text(
        '[till]\nid = "t1"\nstore = "s1"\ndata_dir = "data"\n'
        '[standalone]\nprogram_file = "program.toml"\ncards_file = "cards.csv"\n',
        encoding="utf-8",
    )
    service = build_service(load_config(cfg))
    watcher = FileWatcher(
        service=service, program_file=tmp / "program.toml", cards_file=tmp / "cards.csv"
    )
    watcher.load_program(strict=True)
    return service, watcher


def write(tmp: Path, text: str | bytes, *, later: float = 0) -> None:
    path = tmp / "cards.csv"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    if later:
        os.utime(path, (time.time() + later, time.time() + later))


def cards(service: TillService) -> dict[str, str]:
    with service.db.read() as conn:
        return {r[0]: r[1] for r in conn.execute("SELECT number, holder FROM cards")}


def openings(service: TillService) -> dict[str, int]:
    with service.db.read() as conn:
        rows = conn.execute("SELECT card, SUM(points) FROM ledger GROUP BY card").fetchall()
    return {r[0]: r[1] for r in rows}


def rows(n: int) -> str:
    """``n`` good rows with numbers that match the default pattern (13 digits)."""
    return "".join(f"{2800000000000 + i},Держатель {i},,,,,,,{i % 7}\n" for i in range(n))


HEADER = "number,holder,phone,birthday,tier,segments,clubs,status,balance\n"


def test_bad_rows_and_a_number_met_twice_are_reported_by_row_and_the_rest_is_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service, watcher = till(tmp_path)
    write(
        tmp_path,
        "number,holder,balance,colour\n"
        f"{ANNA},Анна,100,\n"
        "bad,Никто,,\n"
        f"{BORIS},Борис,,\n"
        f"{ANNA},Анна дважды,500,\n"
        f"{VERA},Вера,-5,\n"
        f"{BORIS},Борис дважды,,\n",
    )
    with caplog.at_level(logging.WARNING):
        watcher.load_cards(strict=True)
    problems = [r.getMessage().split(": ", 1)[1] for r in caplog.records]
    assert problems == [
        "header: unknown column 'colour' ignored",
        f"row 3: card number {mask('bad')!r} does not match the card pattern",
        f"row 5: card {mask(ANNA)} appears twice",
        "row 6: balance must be a whole number of points >= 0",
        f"row 7: card {mask(BORIS)} appears twice",
    ]
    assert cards(service) == {ANNA: "Анна", BORIS: "Борис"}  # the first row of a number
    assert openings(service) == {ANNA: 100}
    service.db.close()


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, f"number,holder,balance\n{ANNA},Анна,100\n")
    service, watcher = till(tmp_path)
    watcher.load_cards(strict=True)
    with service.db.write() as conn:  # marks what a new import would overwrite
        conn.execute("UPDATE cards SET holder = 'не из файла'")
    service.db.close()

    write(tmp_path, f"number,holder,balance\n{ANNA},Анна,100\n", later=5)  # same bytes, touched
    service, watcher = till(tmp_path)  # a restart
    with caplog.at_level(logging.INFO):
        watcher.load_cards(strict=True)
    assert cards(service) == {ANNA: "не из файла"}
    assert "unchanged (same checksum): not loaded again" in caplog.text

    write(tmp_path, f"number,holder,balance\n{ANNA},Анна,100\n{BORIS},Борис,30\n", later=10)
    watcher.poll()  # a change while running
    assert cards(service) == {ANNA: "Анна", BORIS: "Борис"}
    assert openings(service) == {ANNA: 100, BORIS: 30}  # once per card, however often
    service.db.close()

    service, watcher = till(tmp_path)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        watcher.load_cards(strict=True)  # not even its checksum: the size and time are its
    assert "unchanged (same size and time): not loaded again" in caplog.text
    assert openings(service) == {ANNA: 100, BORIS: 30}
    service.db.close()


def test_a_new_card_pattern_reads_the_same_file_again(tmp_path: Path) -> None:
    write(tmp_path, f"number,holder\n{ANNA},Анна\n12345,Короткий\n")
    service, watcher = till(tmp_path)
    watcher.load_cards(strict=True)
    assert set(cards(service)) == {ANNA}
    service.db.close()
    pattern = '[program]\nname = "Магазин у дома"\ncard_number_pattern = "^[0-9]{5,13}$"\n'
    service, watcher = till(tmp_path)
    (tmp_path / "program.toml").write_text(pattern, encoding="utf-8")
    watcher.load_program(strict=True)
    watcher.load_cards(strict=True)
    assert set(cards(service)) == {ANNA, "12345"}
    service.db.close()


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (b"\xff\xfe not text\n", "codec can't decode"),
        (b'2800000099999,"' + b"x" * (csv.field_size_limit() + 1) + b'"\n', "field larger"),
    ],
    ids=["not-utf8", "not-csv"],
)
def test_a_file_that_cannot_be_read_to_its_end_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: bytes, why: str
) -> None:
    write(tmp_path, f"number,holder\n{ANNA},Анна\n")
    service, watcher = till(tmp_path)
    watcher.load_cards(strict=True)
    # Several batches of good rows are written before the bad bytes are met.
    broken = (HEADER + rows(3 * card_store.BATCH)).encode() + bad + rows(10).encode()
    write(tmp_path, broken, later=5)
    with caplog.at_level(logging.ERROR):
        watcher.poll()
    assert why in caplog.text and "the cards in force are kept" in caplog.text
    assert cards(service) == {ANNA: "Анна"}
    assert openings(service) == {}
    service.db.close()

    service, watcher = till(tmp_path)  # at start it refuses the start, as a missing file does
    with pytest.raises(errors.ConfigError, match="cannot read the cards file"):
        watcher.load_cards(strict=True)
    assert cards(service) == {ANNA: "Анна"}
    service.db.close()

    write(tmp_path, HEADER + rows(10), later=10)  # mended: read again, though seen before
    service, watcher = till(tmp_path)
    watcher.load_cards(strict=True)
    assert len(cards(service)) == 11
    service.db.close()


def test_a_big_file_goes_through_in_batches_with_every_card_and_balance(tmp_path: Path) -> None:
    n = 2 * card_store.BATCH + 17
    write(tmp_path, HEADER + rows(n) + f"{2800000000000 + 5},Повтор,,,,,,,\n")
    service, watcher = till(tmp_path)
    watcher.load_cards(strict=True)
    assert len(cards(service)) == n
    assert cards(service)["2800000000005"] == "Держатель 5"
    assert sum(openings(service).values()) == sum(i % 7 for i in range(n))
    service.db.close()


EXPIRING = PROGRAM + "expiry_days = 365\n"


def test_opening_balances_are_credited_as_a_card_at_a_time_credited_them(
    tmp_path: Path,
) -> None:
    """A first load credits its balances in a few statements: each entry and lot is what
    the one-card credit makes (the other till, ``import_cards``), every balance the sum of
    its entries; a card already holding entries (one owing 30) goes the one-card way, its
    debt paid first."""
    n, owing = 40, 2800000000007
    write(
        tmp_path,
        HEADER + "".join(f"{2800000000000 + i},Д {i},,,,,,,{1 + i % 7}\n" for i in range(n)),
    )
    service, watcher = till(tmp_path, EXPIRING)
    now = service.clock.now()
    with service.db.write() as conn:
        ledger.append(conn, till="t1", card=str(owing), kind="adjust", points=-30, at=now)
    watcher.load_cards(strict=True)

    one_by_one = tmp_path / "one"
    one_by_one.mkdir()
    other, _ = till(one_by_one, EXPIRING)
    other.import_cards(
        [CardRecord(number=str(2800000000000 + i), opening_balance=1 + i % 7) for i in range(n)]
    )

    def credits(svc: TillService) -> list[tuple[object, ...]]:
        with svc.db.read() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    "SELECT e.card, e.kind, e.points, e.note, e.till, l.points, l.remaining,"
                    " l.available_from = e.created_at, l.expires_at IS NULL,"
                    " julianday(l.expires_at) - julianday(l.available_from)"
                    " FROM ledger AS e JOIN lots AS l ON l.entry_id = e.id AND l.id = e.id"
                    " WHERE e.points > 0 ORDER BY e.card"
                )
            ]

    got, want = credits(service), credits(other)
    paid = [r for r in got if r[0] == str(owing)]
    assert paid == [(str(owing), "adjust", 1, "opening balance", "t1", 0, 0, 1, 0, 365.0)]
    assert [r for r in got if r[0] != str(owing)] == [r for r in want if r[0] != str(owing)]
    with service.db.read() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM ledger")]
        seqs = [r[0] for r in conn.execute("SELECT seq FROM ledger ORDER BY seq")]
        for i in range(n):
            card = str(2800000000000 + i)
            total = conn.execute(
                "SELECT SUM(points) FROM ledger WHERE card = ?", (card,)
            ).fetchone()[0]
            bal = ledger.balance(conn, card, service.clock.now())
            assert bal.total == total == (1 + i % 7 - (30 if card == str(owing) else 0))
            assert bal.balance + bal.pending - bal.held == total
    assert len(set(ids)) == len(ids) == n + 1
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)
    assert seqs == list(range(1, n + 2))
    service.db.close()
    other.db.close()
