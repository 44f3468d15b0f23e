"""Which model ids route: every class by name and as ``namespace/class``, and the aliases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mangaroute import InvalidRequest
from mangaroute.dropin.client import routed_ids
from tests.dropin.support import make_router

ROUTER = make_router()
CLASSES = ROUTER.request_classes
names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)


@given(names, st.dictionaries(names, st.sampled_from(CLASSES), max_size=4))
def test_classes_namespaced_classes_and_aliases_route(
    namespace: str, aliases: dict[str, str]
) -> None:
    ids = routed_ids(ROUTER, namespace, aliases)
    expected = {name: name for name in CLASSES}
    expected.update({f"{namespace}/{name}": name for name in CLASSES})
    expected.update(aliases)  # an alias wins over a class of the same spelling
    assert ids == expected


@given(names, names.filter(lambda n: n not in CLASSES))
def test_an_alias_to_no_class_is_refused_naming_both(alias: str, name: str) -> None:
    with pytest.raises(InvalidRequest, match="is not a request class; configured classes: chat"):
        routed_ids(ROUTER, "mangaroute", {alias: name})
