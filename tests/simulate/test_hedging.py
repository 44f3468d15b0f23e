"""Per-class hedge delays in the simulator: the plan's hedge fires at each class's own
fraction of the budget, a class set off is never hedged, and a contender's
``[invoke.hedge.per_class]`` table reads (and rejects) as the settings do."""

from __future__ import annotations

import tomllib
from array import array

import pytest

from mangaroute.config import Table, parse_config
from mangaroute.core.errors import ConfigError
from mangaroute.core.outcome import OK
from mangaroute.core.settings import RouterConfig
from mangaroute.invoke.client import DEFAULT_HEDGE, InvokeSettings
from mangaroute.invoke.hedging import HedgePolicy
from mangaroute.simulate.driver import invoke_settings
from mangaroute.simulate.scenario import builtin_contenders
from mangaroute.simulate.traffic import Traffic
from tests.simulate.test_driver import CLASSES, CONFIG, TARGET, Scripted, fleet, run

COMPLEX = """
[classes.complex]
targets = ["a", "b", "c"]
policy = "ordered"
"""
START_NS = 10 * 3600 * 10**9
SPACING_NS = 10 * 10**9


def two_classes() -> RouterConfig:
    return parse_config(CONFIG + "".join(TARGET.format(name=n) for n in "abc") + CLASSES + COMPLEX)


def alternating(messages: int) -> Traffic:
    """simple, complex, simple, ... one message every 10 s."""
    return Traffic(
        ("simple", "complex"),
        array("q", [START_NS + k * SPACING_NS for k in range(messages)]),
        array("b", [k % 2 for k in range(messages)]),
        array("H", [500] * messages),
        array("H", [300] * messages),
        array("I", range(messages)),
        array("d", [(k * 0.618) % 1.0 for k in range(messages)]),
        window=(10 * 3600.0, 11 * 3600.0),
    )


def hedged_at(policy: HedgePolicy, messages: int = 10) -> list[int]:
    """When b (the first fallback) was called, in ms after each message's arrival, while a
    answers every call in 2 s (inside the 2,500 ms budget, so only a hedge reaches b)."""
    cfg = two_classes()
    sims = fleet(cfg, a=(OK, 2000.0, None))
    run(alternating(messages), sims, cfg, InvokeSettings(hedge=policy))
    b = sims.by_name["b"]
    assert isinstance(b, Scripted)
    return [((t - START_NS) % SPACING_NS) // 10**6 for t in b.calls]


def test_each_class_is_hedged_at_its_own_fraction_of_the_budget() -> None:
    policy = HedgePolicy(
        after_fraction=None, max_ratio=1.0, per_class={"simple": 0.2, "complex": 0.4}
    )
    # 0.2 x 2,500 ms for simple questions, 0.4 x 2,500 ms for complex ones, alternating
    assert hedged_at(policy) == [500, 1000] * 5


def test_a_class_set_off_or_not_listed_is_never_hedged() -> None:
    off = HedgePolicy(after_fraction=0.4, max_ratio=1.0, per_class={"simple": 0.2, "complex": None})
    assert hedged_at(off) == [500] * 5
    unlisted = HedgePolicy(after_fraction=None, max_ratio=1.0, per_class={"complex": 0.4})
    assert hedged_at(unlisted) == [1000] * 5
    general = HedgePolicy(after_fraction=0.3, max_ratio=1.0, per_class={"complex": 0.4})
    assert hedged_at(general) == [750, 1000] * 5


def test_the_one_budget_caps_every_class_together() -> None:
    policy = HedgePolicy(
        after_fraction=None, max_ratio=0.25, window=1000, per_class={"simple": 0.2, "complex": 0.4}
    )
    assert len(hedged_at(policy, messages=40)) == 10  # 25 % of 40 calls, whatever the class


def read(text: str) -> InvokeSettings:
    return invoke_settings(Table(tomllib.loads(text), "s.toml", "contenders.x.invoke"))


def test_a_contender_sets_per_class_delays_or_turns_hedging_off() -> None:
    settings = read(
        '[hedge]\nafter_fraction = "off"\nmax_ratio = 0.1\n'
        '[hedge.per_class]\ncomplex = 0.6\nsimple = "off"\n'
    )
    assert settings.hedge == HedgePolicy(
        after_fraction=None, max_ratio=0.1, per_class={"complex": 0.6, "simple": None}
    )
    assert read('hedge = "off"').hedge is None
    assert read("").hedge == InvokeSettings().hedge == DEFAULT_HEDGE  # without a table
    assert read('[hedge]\nafter_fraction = "off"\n[hedge.per_class]\nmanga = 0.2\n').hedge == (
        HedgePolicy(after_fraction=None, per_class={"manga": 0.2})
    )
    assert read("[hedge]\n").hedge == HedgePolicy()  # a table starts from HedgePolicy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('hedge = "of"', r'\[contenders.x.invoke.hedge\] expected "off" or a table, got \'of\''),
        ("hedge = 3", r'\[contenders.x.invoke.hedge\] expected "off" or a table, got 3'),
        (
            "[hedge.per_class]\ncomplex = 1.5\n",
            r"\[contenders.x.invoke.hedge.per_class.complex\] expected a number < 1, got 1.5",
        ),
        (
            '[hedge.per_class]\ncomplex = "never"\n',
            r"\[contenders.x.invoke.hedge.per_class.complex\] expected a number, got 'never'",
        ),
        (
            "[hedge]\nafter_fraction = 0\n",
            r"\[contenders.x.invoke.hedge.after_fraction\] expected a number > 0, got 0",
        ),
    ],
)
def test_bad_hedge_settings_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read(text)


def test_baselines_say_hedging_off_and_mangaroute_takes_the_default() -> None:
    contenders = builtin_contenders()
    off = ["seed-switcher", "seed-score", "seed-hybrid", "deadline", "cost-slo", "spillover"]
    off += ["random", "round-robin", "litellm-latency"]
    assert {name: contenders[name].invoke.hedge for name in off} == dict.fromkeys(off)
    for name in ("mangaroute", "schedule", "budget-guard", "canary"):
        assert contenders[name].invoke.hedge == InvokeSettings().hedge
