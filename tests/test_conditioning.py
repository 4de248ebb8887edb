"""Which class a user means: names beat indices, #N is always an index, numeric names are never guessed."""
from __future__ import annotations

import pytest

from gancli.conditioning import ClassChoice, class_index, parse_class
from gancli.errors import GancliError

# folders named 0..11 as a folder data source lists them: sorted as strings
NUMERIC = sorted(str(i) for i in range(12))  # ['0', '1', '10', '11', '2', ..., '9']
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_a_digit_that_is_a_class_name_is_that_class_not_the_index():
    assert NUMERIC[4] == "2"
    assert class_index("2", NUMERIC, 12) == 4
    assert class_index("10", NUMERIC, 12) == 2
    assert parse_class("2", NUMERIC, 12) == ClassChoice(index=4)


def test_hash_n_is_always_the_index():
    assert class_index("#2", NUMERIC, 12) == 2
    assert class_index("#7", FASHION, 10) == 7
    assert parse_class(7, FASHION, 10) == ClassChoice(index=7)  # a Python int is an index
    assert parse_class(2, NUMERIC, 12) == ClassChoice(index=2)


def test_a_bare_number_is_the_index_when_no_name_is_a_number():
    assert class_index("7", FASHION, 10) == 7
    assert class_index("sneaker", FASHION, 10) == 7


def test_a_number_that_names_no_class_among_numeric_names_is_refused_as_ambiguous():
    names = [str(i) for i in range(1, 11)]  # folders 1..10: is "0" the index or a missing name?
    with pytest.raises(GancliError, match=r"ambiguous.*#0"):
        class_index("0", names, 10)
    assert class_index("#0", names, 10) == 0


def test_mixtures_resolve_each_part_the_same_way():
    choice = parse_class("2:0.5,#2:0.5", NUMERIC, 12)
    assert choice.weights == ((2, 0.5), (4, 0.5))
    with pytest.raises(GancliError, match="out of range"):
        parse_class("#12", NUMERIC, 12)
    with pytest.raises(GancliError, match="unknown class 'Hat'"):
        parse_class("Hat", FASHION, 10)
