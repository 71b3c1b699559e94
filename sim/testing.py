"""Test support: simulator benches skip with a clear reason when their simulator is missing, except in CI
(``CI`` set), where every tool must be installed and a missing one fails."""

import os

import pytest

from slimgen.sim.runner import SimulatorNotFound, check_simulator


def require_simulator(sim):
    try:
        check_simulator(sim)
    except SimulatorNotFound as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))


def untrained_int_run(kind_name, root):
    """``root`` made a run folder holding the ``model.npz`` of model kind ``kind_name`` (an
    untrained float model with the kind's default settings, quantized the way the flow does it);
    returns the integer model and the run's settings."""
    import numpy as np

    from slimgen.models import get_model_kind
    from slimgen.settings import RunConfig
    from slimgen.sw.data import load_dataset
    from slimgen.sw.nn import build_model
    kind, config = get_model_kind(kind_name), RunConfig(model=kind_name)
    data = load_dataset("digits", view=kind.VIEW, seed=0)
    int_model = kind.quantize(build_model(kind.float_spec(config), np.random.default_rng(0)),
                              data, config, {})
    kind.save_int(root / "model.npz", int_model, dataset="digits", split_seed=0)
    return int_model, config
