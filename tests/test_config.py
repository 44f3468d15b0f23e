"""Config loading: the shipped default, and precise errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaroute import ConfigError, Pattern, load_config, load_default_config, parse_config

from .conftest import SMALL_CONFIG


def test_the_shipped_default_is_the_mangaassist_deployment() -> None:
    config = load_default_config()
    names = [t.name for t in config.targets]
    assert names == ["provisioned-sonnet", "ondemand-haiku", "ondemand-sonnet", "sagemaker-manga"]
    pt = config.target("provisioned-sonnet")
    assert pt.pattern is Pattern.BEDROCK_PROVISIONED
    assert pt.model_id.startswith("arn:aws:bedrock:ap-northeast-1:")
    assert pt.capacity.tokens_per_minute == 80_000  # 2 units x 40,000 (the seed's estimate)
    assert pt.pricing.hourly_usd == 46.0
    assert (pt.prior.p50_ms, pt.prior.p90_ms, pt.prior.p99_ms) == (600, 900, 1400)
    haiku = config.target("ondemand-haiku")
    assert (haiku.pricing.input_per_million_usd, haiku.pricing.output_per_million_usd) == (
        0.25,
        1.25,
    )
    sm = config.target("sagemaker-manga")
    assert sm.capacity.requests_per_second == 16 and sm.pricing.hourly_usd == pytest.approx(3.78)
    assert sm.ops_score == 40
    assert [c.name for c in config.classes] == ["simple", "complex", "manga"]
    assert config.switcher is not None and config.switcher.primary == "provisioned-sonnet"
    assert set(config.policies) == {"switcher", "preference", "score"}


def test_seed_reference_profiles_are_built_in() -> None:
    text = SMALL_CONFIG.replace(
        "prior = { p50_ms = 800, p90_ms = 1200, p99_ms = 2000 }", 'prior = "sagemaker_serverless"'
    )
    slow = parse_config(text).target("slow")
    assert slow.prior.p99_ms == 5000
    assert slow.prior.effective_p99_ms == 8000  # 10 % cold starts of 8 s dominate the tail


def test_a_file_on_disk_loads(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(SMALL_CONFIG)
    assert load_config(path).source == str(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("tokens_per_minute = 100000", "tokens_per_minute = -5"),
            "test.toml: [targets.fast.tokens_per_minute] expected a number > 0, got -5",
        ),
        (
            ('pattern = "bedrock_on_demand"', 'pattern = "ec2"'),
            "test.toml: [targets.fast.pattern] expected one of bedrock_provisioned, "
            "bedrock_on_demand, sagemaker_realtime, sagemaker_serverless, lambda_on_demand, "
            "got 'ec2'",
        ),
        (
            ('tier = "haiku"', 'tier = "haiku"\ncolour = "red"'),
            "test.toml: [targets.fast.colour] is not a known key",
        ),
        (
            ('targets = ["fast", "slow", "steady"]', 'targets = ["fast", "fsat"]'),
            "test.toml: [classes.chat.targets] names unknown target 'fsat'",
        ),
        (
            ('policy = "ordered"\n\n[classes.pinned]', 'policy = "random"\n\n[classes.pinned]'),
            "test.toml: [classes.chat.policy] names unknown policy 'random'",
        ),
        (
            ('ranker = "order"', 'ranker = "vibes"'),
            "test.toml: [policies.ordered.ranker] names unknown ranker 'vibes'",
        ),
        (
            ('filters = ["healthy", "headroom"]', 'filters = ["healthy", "cheap"]'),
            "test.toml: [policies.ordered.filters] names unknown filter 'cheap'",
        ),
        (
            ("window_s = 60", "window_s = 6"),
            "test.toml: [router.window_s] = 6 must hold at least 2 buckets of bucket_s = 5",
        ),
        (
            ("min_samples = 5", "min_samples = 2.5"),
            "test.toml: [router.min_samples] expected an integer, got 2.5: must be an integer "
            "between 1 and 1,000,000 samples",
        ),
        (
            ("cooldown_s = 10", "cooldown_s = 100"),
            "test.toml: [breaker] max_cooldown_s (80.0) must be >= cooldown_s (100.0)",
        ),
        (
            ("model_units = 1\n", ""),
            "test.toml: [targets.steady.model_units] is required when hourly_usd_per_unit is set",
        ),
        (
            ('model_id = "anthropic.claude-3-haiku-20240307-v1:0"\n', ""),
            "test.toml: [targets.fast.model_id] is required",
        ),
        (
            ("p99_ms = 2000", "p99_ms = 1000"),
            "[targets.slow.prior] p99_ms must be >= p90_ms (percentiles never decrease), got "
            "p90_ms=1200.0 p99_ms=1000.0",
        ),
        (
            ('default_class = "chat"', 'default_class = "nope"'),
            "default_class 'nope' is not a configured class",
        ),
        (("[breaker]", "[breaker\n"), "test.toml is not valid TOML"),
    ],
)
def test_errors_name_the_file_the_key_and_what_was_expected(
    edit: tuple[str, str], message: str
) -> None:
    old, new = edit
    assert old in SMALL_CONFIG
    with pytest.raises(ConfigError) as info:
        parse_config(SMALL_CONFIG.replace(old, new, 1), source="test.toml")
    assert message in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml cannot be read"):
        load_config(tmp_path / "nope.toml")


def test_minimal_config_gets_a_default_class_and_policy() -> None:
    config = parse_config(
        '[targets.a]\npattern = "bedrock_on_demand"\nmodel_id = "m"\nregion = "us-east-1"\n'
    )
    assert [c.name for c in config.classes] == ["default"]
    assert config.policies["default"].ranker.name == "score"


values = st.one_of(
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
keys = st.sampled_from(
    [
        "window_s",
        "min_samples",
        "relative_error",
        "refresh_ms",
        "bucket_s",
        "default_class",
        "region",
        "decision_ttl_s",
    ]
)


@given(keys, values)
@settings(max_examples=200, deadline=None)
def test_any_router_value_either_loads_or_fails_with_a_config_error(
    key: str, value: object
) -> None:
    rendered = json.dumps(value) if not isinstance(value, float) else repr(value)
    rendered = {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(rendered, rendered)
    text = SMALL_CONFIG.replace("[router]\n", f"[router]\n{key} = {rendered}\n", 1)
    text = text.replace(f"\n{key} = ", f"\n#{key} = ").replace(
        f"#{key} = {rendered}", f"{key} = {rendered}", 1
    )
    try:
        parse_config(text, source="fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml")


def test_a_bad_shared_url_is_named_without_its_password() -> None:
    text = SMALL_CONFIG + '\n[shared]\nurl = "http://app:s3cret@redis:6379"\ndeployment = "d"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="s.toml")
    assert str(info.value) == (
        "s.toml: [shared.url] expected a redis://, rediss:// or unix:// URL, got "
        "'http://app:***@redis:6379'"
    )


FLOORED = SMALL_CONFIG.replace(
    'default_class = "chat"', 'default_class = "chat"\nquality = ["haiku", "sonnet"]'
).replace(
    'policy = "ordered"\n\n[classes.pinned]',
    'policy = "ordered"\nquality_floor = "sonnet"\n\n[classes.pinned]',
)


def test_a_quality_floor_hands_its_policy_the_tiers_that_meet_it() -> None:
    config = parse_config(FLOORED, source="test.toml")
    assert config.quality == ("haiku", "sonnet")
    assert [c.quality_floor for c in config.classes] == ["sonnet", None]
    assert config.policies["ordered"].floors == (("chat", frozenset({"sonnet"})),)
    unfloored = parse_config(SMALL_CONFIG, source="test.toml")
    assert unfloored.quality == () and unfloored.policies["ordered"].floors == ()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('quality_floor = "sonnet"', 'quality_floor = "sonet"'),
            "test.toml: [classes.chat.quality_floor] = 'sonet' is not a tier of [router] quality "
            "(known: haiku, sonnet)",
        ),
        (
            ('quality = ["haiku", "sonnet"]\n', ""),
            "test.toml: [classes.chat.quality_floor] = 'sonnet' needs a quality ladder: [router] "
            'quality = the tiers from lowest to highest quality, e.g. ["haiku", "sonnet"]',
        ),
        (
            ('quality = ["haiku", "sonnet"]', 'quality = ["sonnet"]'),
            "test.toml: [router.quality] does not rank tier 'haiku', which a target has (rank "
            "every target's tier: haiku, sonnet)",
        ),
        (
            ('quality = ["haiku", "sonnet"]', 'quality = ["haiku", "sonnet", "opus"]'),
            "test.toml: [router.quality] names tier 'opus', which no target has (targets' tiers: "
            "haiku, sonnet)",
        ),
        (
            ('quality = ["haiku", "sonnet"]', 'quality = ["haiku", "sonnet", "haiku"]'),
            "test.toml: [router.quality] names tier 'haiku' twice (each tier once, lowest quality "
            "first)",
        ),
        (
            ('quality = ["haiku", "sonnet"]', 'quality = "haiku"'),
            "test.toml: [router.quality] expected a list of names, got 'haiku'",
        ),
        (
            ('targets = ["fast", "slow", "steady"]', 'targets = ["fast"]'),
            "test.toml: [classes.chat.quality_floor] = 'sonnet': none of the class's targets "
            "meets it (their tiers: haiku), so every call would be below the floor",
        ),
        (
            ('quality_floor = "sonnet"', "quality_floor = 2"),
            "test.toml: [classes.chat.quality_floor] expected a non-empty string, got 2",
        ),
    ],
)
def test_quality_floor_errors_name_the_key_and_the_known_tiers(
    edit: tuple[str, str], message: str
) -> None:
    old, new = edit
    assert old in FLOORED
    with pytest.raises(ConfigError) as info:
        parse_config(FLOORED.replace(old, new, 1), source="test.toml")
    assert str(info.value) == message


def test_a_tier_ranker_over_cost_under_slo_yields_past_its_slo() -> None:
    """``within = "cost_under_slo"`` lends the tier ranker its SLO; ``slo_p99_ms`` sets one."""
    base = SMALL_CONFIG.replace('ranker = "order"', 'ranker = "tier"')

    def ranker(extra: str) -> object:
        text = base + '[policies.ordered.tier]\norder = ["sonnet", "haiku"]\n' + extra
        return parse_config(text, source="test.toml").policies["ordered"].ranker

    assert getattr(ranker(""), "fits", "absent") is None  # the preference insists, as before
    lent = ranker('within = "cost_under_slo"\n').fits  # type: ignore[attr-defined]
    assert lent.__self__.slo_p99_ms == 1500
    explicit = ranker("slo_p99_ms = 2500\n").fits  # type: ignore[attr-defined]
    assert explicit.__self__.slo_p99_ms == 2500
    with pytest.raises(ConfigError) as info:
        ranker("slo_p99_ms = -1\n")
    assert str(info.value).startswith("test.toml: [policies.ordered.tier.slo_p99_ms] ")


def test_the_shipped_default_keeps_complex_and_manga_questions_at_sonnet_or_better() -> None:
    """The seed's hybrid: complex queries on Sonnet (quality-first), manga ones on the
    fine-tuned model (best accuracy); simple ones may use Haiku."""
    config = load_default_config()
    assert config.quality == ("haiku", "sonnet", "custom")
    floors = {c.name: c.quality_floor for c in config.classes}
    assert floors == {"simple": None, "complex": "sonnet", "manga": "sonnet"}
    assert config.policies["switcher"].floors == (("complex", frozenset({"sonnet", "custom"})),)


_TIER_NAMES = st.sampled_from(["haiku", "sonnet", "custom", "opus", "", "Sonnet"])


@given(
    st.lists(_TIER_NAMES, max_size=5),
    st.one_of(st.none(), _TIER_NAMES, st.integers(), st.lists(_TIER_NAMES, max_size=2)),
)
@settings(max_examples=200, deadline=None)
def test_any_quality_ladder_and_floor_either_load_or_fail_with_a_config_error(
    ladder: list[str], floor: object
) -> None:
    """Whatever the ladder and the floor, the config loads with the floor's tiers handed to
    the policy, or fails with a ConfigError naming the file and the key."""
    text = FLOORED.replace('quality = ["haiku", "sonnet"]', f"quality = {json.dumps(ladder)}")
    text = text.replace(
        'quality_floor = "sonnet"\n',
        "" if floor is None else f"quality_floor = {json.dumps(floor)}\n",
    )
    try:
        config = parse_config(text, source="fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith(
            ("fuzz.toml: [router.quality] ", "fuzz.toml: [classes.chat.quality_floor] ")
        )
        return
    assert config.quality == tuple(ladder)
    if floor is None:
        assert config.policies["ordered"].floors == ()
    else:
        assert isinstance(floor, str) and floor in ladder
        meets = frozenset(ladder[ladder.index(floor) :])
        assert config.policies["ordered"].floors == (("chat", meets),)
