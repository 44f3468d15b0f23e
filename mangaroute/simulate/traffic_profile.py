"""One MangaAssist day, two views: planning's :class:`TrafficProfile` and the simulator's
:class:`TrafficModel`, converted both ways.

Planning sizes capacity from a few averages (messages a day, a peak multiplier held for some
peak hours, a burst factor, tokens per message); the simulator draws a whole day from an hourly
curve, a class mix and per-class token shapes. The conversions keep what both describe:

* **profile -> model**: the day's volume; a step curve whose last ``peak_hours`` hours (the
  MangaAssist evening, ending at midnight) run at ``peak_multiplier`` times the daily mean and the
  other hours share the rest evenly (the simulator interpolates between hour centres, so the
  peak rate is held from half an hour after the step to half an hour before midnight, and the
  peak hours carry a little less than ``peak_multiplier x peak_hours / 24`` of the day: 84 %
  rather than 87.5 % for the seed's 3.5 x 6 h); the class mix and its per-class token shapes
  scaled so the mix-weighted means are the profile's averages; and, if asked for, one flash sale at
  ``burst_factor`` times the peak rate.
* **model -> profile**: the volume; ``peak_multiplier`` = the highest hourly weight over the mean
  weight; ``peak_hours`` = the hours above the mean (24 for a flat day); ``burst_factor`` = the
  highest flash-sale multiplier (1.0 without one); the mix-weighted token means, rounded.

A profile survives the round trip profile -> model -> profile (``burst_factor`` only when the
model was given a flash sale; a flat day, ``peak_multiplier = 1``, comes back with
``peak_hours = 24``). A model does not: its curve's shape between the mean and the peak
has no place in a profile.
"""

from __future__ import annotations

from mangaroute.planning.traffic import TrafficProfile
from mangaroute.simulate.traffic import (
    DEFAULT_MIX,
    DEFAULT_TOKENS,
    FlashSale,
    TokenShape,
    TrafficModel,
)

__all__ = ["FLASH_SALE_MINUTES", "profile_from_traffic_model", "traffic_model_from_profile"]

FLASH_SALE_MINUTES = 10.0
"""How long the flash sale that carries a profile's ``burst_factor`` lasts (the simulator's
``FlashSale`` default)."""


def traffic_model_from_profile(
    profile: TrafficProfile,
    *,
    flash_sale_start_s: float | None = None,
    mix: dict[str, float] | None = None,
    tokens: dict[str, TokenShape] | None = None,
) -> TrafficModel:
    """The simulator day a planning profile describes (see the module docstring).

    ``flash_sale_start_s`` (seconds after local midnight) adds one flash sale of
    :data:`FLASH_SALE_MINUTES` at ``profile.burst_factor`` x the peak rate; without it the day has
    none. ``mix`` and ``tokens`` default to the MangaAssist classes; their token shapes are scaled
    so that the mix-weighted means are the profile's ``avg_input_tokens`` and
    ``avg_output_tokens``.
    """
    if profile.avg_input_tokens < 1 or profile.avg_output_tokens < 1:
        raise ValueError(
            "a simulated message needs at least 1 input and 1 output token on average, got "
            f"{profile.avg_input_tokens} in / {profile.avg_output_tokens} out"
        )
    mix = dict(DEFAULT_MIX if mix is None else mix)
    shapes = dict(DEFAULT_TOKENS if tokens is None else tokens)
    mean_in, mean_out = _token_means(mix, shapes)
    scale_in = profile.avg_input_tokens / mean_in
    scale_out = profile.avg_output_tokens / mean_out
    scaled = {
        name: TokenShape(
            max(1.0, shape.input_mean * scale_in),
            max(1.0, shape.output_mean * scale_out),
            shape.spread,
        )
        for name, shape in shapes.items()
    }
    sales: tuple[FlashSale, ...] = ()
    if flash_sale_start_s is not None:
        sales = (FlashSale(flash_sale_start_s, FLASH_SALE_MINUTES, profile.burst_factor),)
    return TrafficModel(
        messages=profile.daily_messages,
        curve=_step_curve(profile.peak_multiplier, profile.peak_hours),
        mix=mix,
        tokens=scaled,
        flash_sales=sales,
    )


def profile_from_traffic_model(model: TrafficModel) -> TrafficProfile:
    """The planning profile of a simulator day (see the module docstring).

    A replayed trace has no curve or mix to summarise: convert the model it was scaled from, or
    plan from the trace's own counts.
    """
    if model.replay is not None:
        raise ValueError("a replayed trace has no traffic curve to summarise as a profile")
    curve = model.curve
    mean = sum(curve) / len(curve)
    above = sum(1 for weight in curve if weight > mean * (1 + 1e-9))
    mean_in, mean_out = _token_means(dict(model.mix), dict(model.tokens))
    burst = max((sale.multiplier for sale in model.flash_sales), default=1.0)
    return TrafficProfile(
        daily_messages=model.messages,
        peak_multiplier=max(curve) / mean,
        peak_hours=above or 24,
        burst_factor=max(1.0, burst),
        avg_input_tokens=round(mean_in),
        avg_output_tokens=round(mean_out),
    )


def _step_curve(peak_multiplier: float, peak_hours: int) -> tuple[float, ...]:
    """24 hourly weights with mean 1: the last ``peak_hours`` at ``peak_multiplier``."""
    if peak_multiplier * peak_hours > 24 + 1e-9:
        raise ValueError(
            f"peak_multiplier {peak_multiplier:g} held for {peak_hours} h is more than the whole "
            f"day's traffic ({peak_multiplier * peak_hours:g} > 24 hours at the mean rate)"
        )
    if peak_hours == 24:
        return (1.0,) * 24
    off_peak = max(0.0, (24 - peak_multiplier * peak_hours) / (24 - peak_hours))
    return (off_peak,) * (24 - peak_hours) + (peak_multiplier,) * peak_hours


def _token_means(mix: dict[str, float], shapes: dict[str, TokenShape]) -> tuple[float, float]:
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("mix must give each class a share >= 0, not all zero")
    missing = [name for name in mix if name not in shapes]
    if missing:
        raise ValueError(f"class {missing[0]!r} has a share in mix but no token shape")
    mean_in = sum(share * shapes[name].input_mean for name, share in mix.items()) / total
    mean_out = sum(share * shapes[name].output_mean for name, share in mix.items()) / total
    return mean_in, mean_out
