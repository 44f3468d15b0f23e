"""A MangaAssist traffic day replayed through the real router in virtual time.

``mangaroute simulate`` (see :mod:`mangaroute.simulate.cli` and ``docs/simulate.md``)::

    from mangaroute.simulate import load_scenario, simulate, to_text

    simulation = simulate(load_scenario("bad-day"), messages=100_000)
    print(to_text(simulation))

The pieces: :mod:`~mangaroute.simulate.traffic` (the day), :mod:`~mangaroute.simulate.fleet`
(the targets' latency, capacity, faults and price), :mod:`~mangaroute.simulate.engine` (the
event loop driving ``Router.choose``/``record``), :mod:`~mangaroute.simulate.bound` (the LP
bound every policy is scored against), :mod:`~mangaroute.simulate.scenario` (scenario files
and contenders),
:mod:`~mangaroute.simulate.run` and :mod:`~mangaroute.simulate.report`.
"""

from mangaroute.simulate.engine import Budget, RunResult
from mangaroute.simulate.fleet import Fault, TargetModel
from mangaroute.simulate.report import dict_to_text, to_dict, to_text
from mangaroute.simulate.run import Simulation, simulate
from mangaroute.simulate.scenario import (
    Contender,
    Scenario,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
    with_faults,
)
from mangaroute.simulate.traffic import FlashSale, TokenShape, Traffic, TrafficModel, generate

__all__ = [
    "Budget",
    "Contender",
    "Fault",
    "FlashSale",
    "RunResult",
    "Scenario",
    "Simulation",
    "TargetModel",
    "TokenShape",
    "Traffic",
    "TrafficModel",
    "builtin_scenarios",
    "dict_to_text",
    "generate",
    "load_scenario",
    "parse_scenario",
    "simulate",
    "to_dict",
    "to_text",
    "with_faults",
]
