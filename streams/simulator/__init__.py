"""The voice servers and the Controller, simulated: contract-valid call events and their truth.

``generate(seed, calls, portals, start_us, faults, knobs, on_truth)`` yields
``SimMessage(key, value, kind)`` in delivery order; ``Simulator`` is the same
engine driven step by step (the Kafka producer paces it by wall clock). The
truth file format is documented in :mod:`streams.simulator.truth`.
"""

from streams.simulator.engine import SimMessage, Simulator, Stats, generate, generate_all
from streams.simulator.knobs import DEFAULT_KNOBS, NO_FAULTS, Faults, Knobs

__all__ = ["DEFAULT_KNOBS", "NO_FAULTS", "Faults", "Knobs", "SimMessage", "Simulator", "Stats",
           "generate", "generate_all"]
