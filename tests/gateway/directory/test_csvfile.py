"""The CSV file of `mukaika user import --csv`: Excel's UTF-8 with its byte order mark and
Japanese group names read exactly; every bad row named by its line, and a file with one bad
row refused whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.directory.csvfile import read_csv
from gateway.directory.records import ImportRefused
from sanitizers.vocabulary import UserRole

HEADER = "name,role,addresses,group\r\n"


def _file(tmp_path: Path, text: str, *, bom: bool = False) -> Path:
    path = tmp_path / "staff.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.mark.parametrize("bom", [True, False])
def test_excel_csv_with_or_without_bom_and_japanese_groups(tmp_path: Path, bom: bool) -> None:
    text = (
        HEADER
        + "tanaka,approver,tanaka@city.example.lg.jp Zeimu@City.example.lg.jp,税務課\r\n"
        + "\r\n"
        + 'suzuki,recipient,suzuki@city.example.lg.jp,"税務課 総務課"\r\n'
        + "yamada,operator,,\r\n"
    )
    people = read_csv(_file(tmp_path, text, bom=bom), max_users=10)
    assert [(p.name, p.role, p.addresses, p.groups) for p in people] == [
        (
            "tanaka",
            UserRole.APPROVER,
            ("tanaka@city.example.lg.jp", "zeimu@city.example.lg.jp"),
            ("税務課",),
        ),
        ("suzuki", UserRole.RECIPIENT, ("suzuki@city.example.lg.jp",), ("税務課", "総務課")),
        ("yamada", UserRole.OPERATOR, (), ()),
    ]


def test_every_bad_row_is_named_by_its_line(tmp_path: Path) -> None:
    text = (
        HEADER
        + "tanaka,approver,tanaka@city.example.lg.jp,税務課\n"
        + "田中,recipient,x@city.example.lg.jp,税務課\n"
        + "sato,chief,sato@city.example.lg.jp,総務課\n"
        + "ito,recipient,not-an-address,総務課\n"
        + "kato,recipient\n"
        + "mori,recipient,mori@city.example.lg.jp,総務部\u3000総務課\n"
        + "abe,recipient,abe@city.example.lg.jp,税務\u202e課\n"
        + "tanaka,recipient,t2@city.example.lg.jp,総務課\n"
    )
    with pytest.raises(ImportRefused) as refused:
        read_csv(_file(tmp_path, text), max_users=10)
    problems = refused.value.problems
    assert problems[0].startswith("line 3: invalid user name '田中'")
    assert problems[1].startswith("line 4: unknown role 'chief'")
    assert problems[2] == "line 5: invalid mail address 'not-an-address'"
    assert problems[3].startswith("line 6: 2 columns, expected 4")
    assert problems[4].startswith("line 7: group name")
    assert "U+3000" in problems[4]
    assert problems[5].startswith("line 8: group name")
    assert "U+202E" in problems[5]
    assert "\u202e" not in problems[5]  # shown escaped, never as a bidi override
    assert problems[-1] == "nothing imported"


def test_a_name_listed_twice_is_refused(tmp_path: Path) -> None:
    text = HEADER + "tanaka,approver,,税務課\n" + "tanaka,recipient,,総務課\n"
    with pytest.raises(ImportRefused, match=r"line 3: user 'tanaka' is listed already \(line 2\)"):
        read_csv(_file(tmp_path, text), max_users=10)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"user,role,mail,group\n", "line 1: the header must be name,role,addresses,group"),
        (HEADER.encode() + b"tanaka,approver,,\x8c\x8e\n", "line 2: not UTF-8"),
        (HEADER.encode() + b'tanaka,"approver,,\n', "not CSV"),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "staff.csv"
    path.write_bytes(data)
    with pytest.raises(ImportRefused, match=problem):
        read_csv(path, max_users=10)


def test_more_users_than_max_users_are_refused(tmp_path: Path) -> None:
    rows = "".join(f"user{n},recipient,,\n" for n in range(4))
    with pytest.raises(ImportRefused, match=r"4 users: more than directory.max_users \(3\)"):
        read_csv(_file(tmp_path, HEADER + rows), max_users=3)
