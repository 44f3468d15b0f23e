"""PNG plots of a simulation (optional: ``pip install 'mangaroute[plots]'`` for matplotlib).

Three files: end-to-end p50 and p99 latency per quarter hour for every policy
(``latency.png``), cumulative pay-per-use spend over the day (``cost.png``), and each policy's
share of answers per target over the day (``targets.png``). Matplotlib is imported here only,
with the non-interactive Agg backend; without it :func:`plot` raises
:class:`PlottingUnavailable` and the CLI says so instead of failing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mangaroute.simulate.engine import BUCKET_S, BUCKETS, LATENCY_BIN_MS, LATENCY_BINS
from mangaroute.simulate.report import bin_percentile
from mangaroute.simulate.run import Simulation


class PlottingUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise PlottingUnavailable(
            "matplotlib is not installed (pip install 'mangaroute[plots]')"
        ) from None
    return plt


def plot(simulation: Simulation, directory: str | Path) -> list[Path]:
    """Write the plots into ``directory`` (created if needed); returns their paths."""
    plt = _pyplot()
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    results = simulation.results + ([simulation.oracle] if simulation.oracle else [])
    hours = [(b * BUCKET_S + BUCKET_S / 2) / 3600 for b in range(BUCKETS)]
    title = f"{simulation.scenario.name} (seed {simulation.seed})"
    paths = []

    fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for index, result in enumerate(results):
        style = _style(result.name, index, plt)
        for axis, q in zip(axes, (0.50, 0.99), strict=True):
            values = [
                bin_percentile(
                    result.timeline_latency[b * LATENCY_BINS : (b + 1) * LATENCY_BINS],
                    q,
                    LATENCY_BIN_MS,
                )
                for b in range(BUCKETS)
            ]
            axis.plot(
                hours, [math.nan if v is None else v for v in values], label=result.name, **style
            )
    axes[0].set_ylabel("p50 end to end, ms")
    axes[1].set_ylabel("p99 end to end, ms")
    axes[1].set_xlabel("hour of the day (local)")
    axes[0].set_title(f"latency over the day - {title}")
    axes[0].legend(fontsize=7, ncol=3)
    paths.append(_save(fig, folder / "latency.png", plt))

    fig, axis = plt.subplots(figsize=(11, 5))
    for index, result in enumerate(results):
        running, series = 0.0, []
        for value in result.timeline_usd:
            running += value
            series.append(running)
        axis.plot(hours, series, label=result.name, **_style(result.name, index, plt))
    axis.set_xlabel("hour of the day (local)")
    axis.set_ylabel("pay-per-use spend so far, $")
    axis.set_title(f"cost over the day (hourly commitments excluded) - {title}")
    axis.legend(fontsize=7, ncol=3)
    paths.append(_save(fig, folder / "cost.png", plt))

    columns = 3
    rows = max(1, math.ceil(len(results) / columns))
    fig, grid = plt.subplots(rows, columns, figsize=(13, 3.2 * rows), squeeze=False)
    for index, result in enumerate(results):
        axis = grid[index // columns][index % columns]
        n = len(result.target_names)
        totals = [max(1, sum(result.timeline_targets[b * n : (b + 1) * n])) for b in range(BUCKETS)]
        shares = [
            [result.timeline_targets[b * n + j] / totals[b] for b in range(BUCKETS)]
            for j in range(n)
        ]
        axis.stackplot(hours, shares, labels=result.target_names)
        axis.set_title(result.name, fontsize=9)
        axis.set_ylim(0, 1)
    for index in range(len(results), rows * columns):
        grid[index // columns][index % columns].axis("off")
    grid[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"share of answers by target - {title}")
    paths.append(_save(fig, folder / "targets.png", plt))
    return paths


def _style(name: str, index: int, plt: Any) -> dict[str, Any]:
    """The oracle black and dashed; policies from a 20-colour palette."""
    if name == "oracle":
        return {"color": "black", "linestyle": "--", "linewidth": 1.5}
    return {"color": plt.get_cmap("tab20")(index % 20), "linewidth": 1.0}


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
