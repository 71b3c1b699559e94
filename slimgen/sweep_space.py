"""The search space of a sweep (``slimgen sweep space.yaml``): read, checked whole, and turned
into each trial's :class:`~slimgen.settings.RunConfig`.

A space file (YAML, or JSON when its name ends in ``.json``)::

    name: cnn-icebreaker          # the study (default: the file's stem)
    fixed:                        # settings of every trial (any RunConfig field)
      model: cnn
      epochs: 20
    parameters:                   # the searched settings (any RunConfig field)
      lanes: [4, 8]               # a list: categorical
      method: {choices: [balanced, magnitude]}
      sparsity: {low: 0.5, high: 0.95}           # float (a bound is a float)
      weight_bits: {low: 4, high: 8}             # int (both bounds integers)
      lr: {low: 1.0e-4, high: 1.0e-2, log: true} # log-uniform
    objectives:                   # figures of the run, and their direction
      hw_accuracy: max
      lc: min
    n_trials: 40                  # grid: at most (by default) the grid's size
    sampler: nsga2                # nsga2 (default), random or grid
    seed: 0
    population: 10                # nsga2's population (default: n_trials // 4, 4 to 50)

Every mistake is one :class:`SpaceError` naming the key, found before anything is created.
A trial's settings are the model kind's defaults, then ``fixed``, then its parameters; a
setting that the trial's method or model does not use (``sparsity`` with method ``none``) is
carried but has no effect, and two trials that differ only in it share every stage (see
:mod:`slimgen.sweep_cache`).
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from slimgen.flow import STAGES, FlowError
from slimgen.settings import RunConfig, SettingError

__all__ = ["SpaceError", "Param", "Space", "load_space", "space_from_dict", "FIGURES",
           "ALIASES", "SAMPLERS"]

SAMPLERS = ("nsga2", "random", "grid")
KEYS = ("name", "fixed", "parameters", "objectives", "n_trials", "sampler", "seed", "population")

# The figures a trial can be judged on, each with the stage that measures it (the flow runs up
# to the latest stage an objective needs: no build unless a resource is an objective).
FIGURES = {
    "float_accuracy": "train", "val_accuracy": "train",
    "compressed_accuracy": "compress", "sparsity": "compress",
    "int_accuracy": "quantize", "int_float_agreement": "quantize",
    "multipliers": "generate", "mults_per_inference": "generate",
    "cycles_lower_bound": "generate", "cycles_estimate": "generate",
    "verilog_lines": "generate",
    "hw_accuracy": "verify", "cycles_per_inference": "verify",
    "cycles_between_inferences": "verify", "latency_us": "verify",
    "inferences_per_second": "verify",
    "lc_used": "build", "dsp_used": "build", "bram_used": "build", "fmax_mhz": "build",
}
# Short names for the figures people ask for most.
ALIASES = {
    "hardware_accuracy": "hw_accuracy", "accuracy": "hw_accuracy", "lc": "lc_used",
    "lut": "lc_used", "luts": "lc_used", "dsp": "dsp_used", "bram": "bram_used",
    "cycles": "cycles_per_inference", "latency": "latency_us",
    "interval": "cycles_between_inferences", "fmax": "fmax_mhz",
    "mults": "mults_per_inference",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_TRIALS = 100_000


class SpaceError(FlowError):
    """A space file that cannot be swept; the message names the file and the key."""


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Param:
    """One searched setting: ``kind`` is ``categorical`` (``choices``), ``int`` or ``float``
    (``low`` ≤ value ≤ ``high``, ``step`` apart when given, log-uniform when ``log``)."""
    name: str
    kind: str
    choices: tuple = ()
    low: float = None
    high: float = None
    step: float = None
    log: bool = False

    def values_to_check(self):
        """The values whose settings are checked before the sweep: every choice, both bounds."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def grid(self):
        """Every value of a grid sampler (categorical, or a range with a step)."""
        if self.kind == "categorical":
            return list(self.choices)
        n = int(round((self.high - self.low) / self.step))
        values = [self.low + i * self.step for i in range(n + 1)]
        return [int(v) for v in values] if self.kind == "int" else values

    def suggest(self, trial):
        """The value an Optuna ``trial`` proposes (lists, e.g. MLP sizes, pass as JSON text)."""
        if self.kind == "categorical":
            coded = [_code(c) for c in self.choices]
            return _decode(trial.suggest_categorical(self.name, coded))
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1,
                                     log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def _code(v):
    """A choice as Optuna stores it: None, bool, int, float and str as they are, a list as its
    JSON text (Optuna's categorical choices are scalars)."""
    return json.dumps(v) if isinstance(v, (list, tuple)) else v


def _decode(v):
    return json.loads(v) if isinstance(v, str) and v.startswith("[") else v


@dataclass(frozen=True)
class Space:
    """A checked space file. ``objectives``: ``((figure, "maximize" | "minimize"), ...)``
    with figure names of the run's summary (aliases resolved); ``stages``: the flow's stages a
    trial runs (up to the latest an objective needs, the report written apart)."""
    name: str
    fixed: dict = field(default_factory=dict)
    params: tuple = ()
    objectives: tuple = ()
    n_trials: int = 20
    sampler: str = "nsga2"
    seed: int = 0
    population: int = None

    @property
    def stages(self):
        last = max(STAGES.index(FIGURES[f]) for f, _ in self.objectives)
        return STAGES[:last + 1]

    @property
    def directions(self):
        return [d for _, d in self.objectives]

    @property
    def figures(self):
        return [f for f, _ in self.objectives]

    def config(self, params=None):
        """The :class:`RunConfig` of a trial with ``params`` (``{name: value}``; none: the
        default design, the flow with the ``fixed`` settings). Raises :class:`SettingError`."""
        params = params or {}
        model = params.get("model", self.fixed.get("model", "mlp"))
        from slimgen.models import MODEL_KINDS, get_model_kind
        defaults = dict(getattr(get_model_kind(model), "DEFAULTS", {})) \
            if model in MODEL_KINDS else {}
        return RunConfig.from_dict({**RunConfig().to_dict(), **defaults, "model": model,
                                    **self.fixed, **params})

    def to_dict(self):
        """The space as stored in the study (a worker joining from elsewhere reads it there)."""
        params = {}
        for p in self.params:
            if p.kind == "categorical":
                params[p.name] = {"choices": list(p.choices)}
            else:
                params[p.name] = {"low": p.low, "high": p.high,
                                  **({"step": p.step} if p.step is not None else {}),
                                  **({"log": True} if p.log else {})}
        return {"name": self.name, "fixed": dict(self.fixed), "parameters": params,
                "objectives": {f: d[:3] for f, d in self.objectives},
                "n_trials": self.n_trials, "sampler": self.sampler, "seed": self.seed,
                **({"population": self.population} if self.population else {})}

    @property
    def population_size(self):
        """NSGA-II's population: given, or a quarter of the trials (4 to 50), so that a small
        sweep still has generations that learn from the ones before."""
        return self.population or max(4, min(50, self.n_trials // 4))


def load_space(path):
    """The :class:`Space` in the file ``path`` (YAML, or JSON for ``.json``), checked whole."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceError(f"{where}: no such space file") from None
    except IsADirectoryError:
        raise SpaceError(f"{where} is a folder, not a space file (.yaml or .json)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpaceError(f"{where} cannot be read as text ({e})") from None
    if path.suffix == ".json":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpaceError(f"{where} is not valid JSON ({e})") from None
    else:
        try:
            import yaml
        except ImportError:
            raise SpaceError(f"{where}: reading YAML needs PyYAML (pip install pyyaml); or "
                             f"write the space as JSON (space.json)") from None
        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpaceError(f"{where} is not valid YAML ({' '.join(str(e).split())})") \
                from None
    return space_from_dict(d, where=where, default_name=path.stem)


def space_from_dict(d, *, where="space", default_name="sweep"):
    """The :class:`Space` of the mapping ``d`` (a space file's content), checked whole."""
    def bad(key, message):
        return SpaceError(f"{where}: {key}: {message}")

    if not isinstance(d, dict):
        raise SpaceError(f"{where} must hold a mapping with parameters and objectives, not "
                         f"{type(d).__name__ if d is not None else 'nothing'}")
    unknown = [k for k in d if k not in KEYS]
    if unknown:
        raise SpaceError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    name = d.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad("name", f"must be a name of letters, digits, '_', '.' and '-' (it names the "
                          f"study and its folder), not {name!r}")
    known = list(RunConfig().to_dict())
    fixed = d.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise bad("fixed", f"must be a mapping of run settings (e.g. model: cnn), not {fixed!r}")
    for k in fixed:
        if k not in known:
            raise bad(f"fixed.{k}", f"is not a run setting; the settings are {', '.join(known)}")
    raw = d.get("parameters")
    if not isinstance(raw, dict) or not raw:
        raise bad("parameters", "must be a mapping of one or more searched settings (e.g. "
                                "lanes: [4, 8]), not " + repr(raw))
    params = tuple(_param(k, v, known, bad) for k, v in raw.items())
    both = [p.name for p in params if p.name in fixed]
    if both:
        raise bad(f"parameters.{both[0]}", "is also in fixed: give it in one of them")
    objectives = _objectives(d.get("objectives"), bad)
    n_trials = d.get("n_trials", 20)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or not \
            1 <= n_trials <= MAX_TRIALS:
        raise bad("n_trials", f"must be an integer from 1 to {MAX_TRIALS}, not {n_trials!r}")
    sampler = d.get("sampler", "nsga2")
    if sampler not in SAMPLERS:
        raise bad("sampler", f"must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    seed = d.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise bad("seed", f"must be a non-negative integer, not {seed!r}")
    population = d.get("population")
    if population is not None and (isinstance(population, bool) or not isinstance(
            population, int) or population < 2):
        raise bad("population", f"must be an integer ≥ 2 (NSGA-II's population), not "
                                f"{population!r}")
    if population is not None and sampler != "nsga2":
        raise bad("population", f"is NSGA-II's population; sampler {sampler} has none")
    if sampler == "grid":
        for p in params:
            if p.kind != "categorical" and (p.step is None or p.log):
                raise bad(f"parameters.{p.name}", "needs a step (and no log) for the grid "
                                                  "sampler, or a list of choices")
        # a grid is swept once: more trials would only repeat its points
        size = math.prod(len(p.grid()) for p in params)
        n_trials = min(n_trials, size) if "n_trials" in d else size
    space = Space(name=name, fixed=dict(fixed), params=params, objectives=objectives,
                  n_trials=n_trials, sampler=sampler, seed=seed, population=population)
    _check_settings(space, bad)
    return space


def _param(name, v, known, bad):
    key = f"parameters.{name}"
    if name not in known:
        raise bad(key, f"is not a run setting; the settings are {', '.join(known)}")
    if isinstance(v, list):
        v = {"choices": v}
    if not isinstance(v, dict):
        raise bad(key, f"must be a list of choices or a mapping with choices, or low and high, "
                       f"not {v!r}")
    if "choices" in v:
        extra = sorted(set(v) - {"choices"})
        if extra:
            raise bad(key, f"has choices and {', '.join(extra)}: give either choices or low "
                           f"and high")
        choices = v["choices"]
        if not isinstance(choices, list) or not choices:
            raise bad(f"{key}.choices", f"must be a non-empty list, not {choices!r}")
        coded = [_code(c) for c in choices]
        if len(set(map(json.dumps, coded))) != len(coded):
            raise bad(f"{key}.choices", f"has a value twice: {choices!r}")
        for c in choices:
            if not (c is None or isinstance(c, (bool, int, float, str, list))):
                raise bad(f"{key}.choices", f"holds {c!r}, which is not a setting's value")
        return Param(name, "categorical", choices=tuple(choices))
    extra = sorted(set(v) - {"low", "high", "step", "log"})
    if extra:
        raise bad(f"{key}.{extra[0]}", "is not a key of a parameter; the keys are choices, or "
                                       "low, high, step and log")
    for b in ("low", "high"):
        if b not in v:
            raise bad(key, f"needs {b} (and {'high' if b == 'low' else 'low'}), or choices")
        if not _number(v[b]):
            hint = " (YAML reads 1e-4 as text: write 1.0e-4)" if isinstance(v[b], str) else ""
            raise bad(f"{key}.{b}", f"must be a number, not {v[b]!r}{hint}")
    low, high, step, log = v["low"], v["high"], v.get("step"), v.get("log", False)
    if not isinstance(log, bool):
        raise bad(f"{key}.log", f"must be true or false, not {log!r}")
    if step is not None and (not _number(step) or step <= 0):
        raise bad(f"{key}.step", f"must be a positive number, not {step!r}")
    kind = "int" if all(isinstance(x, int) for x in (low, high)) and \
        (step is None or isinstance(step, int)) else "float"
    if low >= high:
        raise bad(key, f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise bad(f"{key}.low", f"must be positive on a log scale, not {low}")
    if log and step is not None:
        raise bad(f"{key}.step", "cannot go with log: true")
    if step is not None and abs(round((high - low) / step) * step - (high - low)) > 1e-9 * \
            max(1.0, abs(high - low)):
        raise bad(f"{key}.step", f"{step} does not divide high - low ({high} - {low})")
    if kind == "float":
        low, high = float(low), float(high)
        step = float(step) if step is not None else None
    return Param(name, kind, low=low, high=high, step=step, log=log)


def _objectives(raw, bad):
    if not isinstance(raw, dict) or not raw:
        raise bad("objectives", f"must map one or more figures to max or min (e.g. "
                                f"hw_accuracy: max), not {raw!r}")
    out = []
    for k, direction in raw.items():
        figure = ALIASES.get(k, k)
        if figure not in FIGURES:
            raise bad(f"objectives.{k}", f"is not a figure of a run; the figures are "
                                         f"{', '.join(FIGURES)} (or {', '.join(ALIASES)})")
        words = {"max": "maximize", "min": "minimize", "maximize": "maximize",
                 "minimize": "minimize"}
        if direction not in words:
            raise bad(f"objectives.{k}", f"must be max or min, not {direction!r}")
        if figure in [f for f, _ in out]:
            raise bad(f"objectives.{k}", f"names {figure} a second time")
        out.append((figure, words[direction]))
    return tuple(out)


def _check_settings(space, bad):
    """Every fixed setting, and every value of every parameter with the others at their
    defaults or at one of their own values, makes a valid run; otherwise the first setting
    that cannot is named (a space no trial of which could run is refused here, not 40 times)."""
    try:
        space.config()
    except SettingError as e:
        if e.setting in space.fixed or e.setting == "model":
            raise bad(f"fixed.{e.setting}", _strip(e)) from None
        # the default of a searched setting does not fit the fixed ones: the search still
        # may, so the reference design is judged at its trial (and recorded as infeasible)
    for p in space.params:
        for value in p.values_to_check():
            error = _first_error(space, p, value)
            if error is not None:
                raise bad(f"parameters.{p.name}", f"the value {value!r} makes no valid run "
                                                  f"with any other parameter's values: "
                                                  f"{error}")


def _first_error(space, p, value):
    """None if ``p = value`` makes a valid run with the other parameters at their defaults or
    with one of them at one of its own values; else the first refusal's message."""
    first = None
    candidates = [{}] + [{q.name: v} for q in space.params if q is not p
                         for v in q.values_to_check()]
    for others in candidates:
        try:
            space.config({**others, p.name: value})
            return None
        except SettingError as e:
            first = first or str(e)
        except (TypeError, ValueError) as e:
            first = first or str(e)
    return first


def _strip(e):
    return str(e)[len(e.setting) + 1:] if str(e).startswith(e.setting) else str(e)
