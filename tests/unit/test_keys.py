"""Tenant API keys: random, stored only as a hash, read from a Bearer header."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tollgate.keys import KEY_PATTERN, KeyStatus, bearer_token, hash_key, issue_key, key_id_of


def test_an_issued_key_is_random_and_only_its_hash_is_kept() -> None:
    first = issue_key("acme", datetime.now(UTC), label="ci")
    second = issue_key("acme", datetime.now(UTC))
    assert KEY_PATTERN.match(first.secret)
    assert first.secret != second.secret
    assert first.record.key_hash == hash_key(first.secret)
    assert first.secret not in repr(first.record)
    assert first.record.status is KeyStatus.ACTIVE
    assert key_id_of(first.secret) == first.record.key_id


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer tg_abc", "tg_abc"),
        ("bearer   tg_abc  ", "tg_abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_header_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected
