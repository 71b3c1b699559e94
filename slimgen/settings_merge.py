"""Run settings from their layers, merged and checked once: the stored ``config.json`` (or the
model kind's defaults), a ``--config`` file, then the command line or the API's keywords. A
refusal names the setting the way its layer gave it (an option, a file's key, a keyword), and a
setting the model or the method would ignore is refused. The command line and the Python API
(:mod:`slimgen.api`) share this code; :class:`Words` says how each names things."""

import json
from dataclasses import dataclass
from pathlib import Path

from slimgen.flow import FlowError
from slimgen.settings import RunConfig, SettingError

__all__ = ["Words", "CLI_WORDS", "PYTHON_WORDS", "settings_object", "stored_settings",
           "merge_settings"]


@dataclass(frozen=True)
class Words:
    """How messages name the settings given: ``given`` (where they come from), ``option(name)``
    (``--lanes`` or ``lanes``), ``flag(name, value)`` (``--method joint`` or
    ``method='joint'``)."""
    given: str
    option: object
    flag: object


def _value_text(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _option(name):
    return "--" + name.replace("_", "-")


CLI_WORDS = Words("command line", _option, lambda n, v: f"{_option(n)} {_value_text(v)}")
PYTHON_WORDS = Words("arguments", lambda n: n, lambda n, v: f"{n}={v!r}")


def settings_object(path, where):
    """The JSON object of run settings in ``path`` (a ``--config`` file or a run's
    ``config.json``; ``where`` names it in messages), with no unknown keys. Its values are
    checked once merged with the others (:func:`merge_settings`)."""
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FlowError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FlowError(f"{where} is not a JSON file of run settings ({e})") from None
    if not isinstance(d, dict):
        raise FlowError(f"{where} must hold one JSON object of settings, e.g. "
                        f'{{"model": "cnn", "lanes": 4}}, not a {type(d).__name__}')
    known = set(RunConfig().to_dict())
    if set(d) - known:
        raise FlowError(f"{where}: Unknown run settings {sorted(set(d) - known)}; known: "
                        f"{sorted(known)}")
    return d


def stored_settings(run_root):
    """The settings in the run folder's ``config.json``, or None for a new run."""
    path = Path(run_root) / "config.json"
    return settings_object(path, str(path)) if path.exists() else None


def merge_settings(run_root, stored, given, *, from_file=None, config_file=None,
                   words=PYTHON_WORDS):
    """The run's :class:`RunConfig`: the ``stored`` settings (or, for a new run or a new model
    kind, that kind's defaults), then ``from_file`` (a ``--config`` file), then ``given``;
    a bad setting is named by where it came from, and a setting the model kind or the method
    would ignore is refused (:class:`FlowError`)."""
    from slimgen.models import MODEL_KINDS, get_model_kind
    from_file = from_file or {}
    stored_path = Path(run_root) / "config.json"
    model = given.get("model") or from_file.get("model")
    defaults = RunConfig().to_dict()
    if stored is None or (model is not None and model != stored.get("model", "mlp")):
        kind = model or "mlp"      # a new run, or a new model kind: that kind's defaults
        if kind in MODEL_KINDS:
            defaults.update(getattr(get_model_kind(kind), "DEFAULTS", {}), model=kind)
        base, base_origin = defaults, "default"
    else:
        base, base_origin = {**defaults, **stored}, str(stored_path)
    config = _merge(((base_origin, base), (f"--config {config_file}", from_file),
                     (words.given, given)), words)
    # a --config file may be a run's config.json, which holds every setting: only its values
    # other than the defaults count as asked for
    kind_defaults = {**RunConfig().to_dict(),
                     **getattr(get_model_kind(config.model), "DEFAULTS", {})}
    _check_used(config, given, None, words)
    _check_used(config, {k: v for k, v in from_file.items() if v != kind_defaults.get(k)},
                config_file, words)
    return config


def _merge(layers, words):
    """The :class:`RunConfig` of the settings ``layers`` (``(origin, settings)`` pairs, later
    ones overriding earlier ones). A refusal blames the layer the bad setting came from, or,
    when that value was valid until a later layer changed another setting (new ``sizes``
    against the stored ``lanes``), names the later settings that made the difference."""
    first_where, first = layers[0]
    if first_where != "default":
        try:
            RunConfig.from_dict(first)
        except SettingError as e:
            raise FlowError(f"{first_where} is not a valid run configuration: {e}") from None
    merged, origin = {}, {}
    for where, settings in layers:
        merged.update(settings)
        origin.update(dict.fromkeys(settings, where))
    try:
        return RunConfig.from_dict(merged)
    except SettingError as e:
        raise FlowError(_refusal(e, layers, merged, origin, words)) from None


def _refusal(e, layers, merged, origin, words):
    """The message for the :class:`SettingError` ``e`` of the ``merged`` settings."""
    name, message = e.setting, str(e)[len(e.setting):]
    where = origin.get(name, "default")
    wheres = [w for w, _ in layers]
    later = layers[wheres.index(where) + 1:] if where in wheres else []

    def valid_without(layer, key):
        trial = {}
        for w, settings in layers:
            trial.update({k: v for k, v in settings.items() if not (w == layer and k == key)})
        try:
            RunConfig.from_dict(trial)
        except SettingError:
            return False
        return True

    culprits = [(w, k) for w, settings in later for k in settings if valid_without(w, k)]
    if where == words.given or not culprits:
        if where == words.given:
            return f"{words.option(name)}{message}"
        if where.startswith("--config"):
            return f"{where}: {e}"
        return str(e) if where == "default" else \
            f"{where} is not a valid run configuration: {e}"
    # a value valid where it came from, no longer with the later settings that changed
    value = _value_text(merged[name])
    with_ = ", ".join(words.flag(k, merged[k]) if w == words.given else
                      f"{k} {_value_text(merged[k])} in {w}" for w, k in culprits)
    of = f"the default {name} {value}" if where == "default" else \
        f"the {name} {value} of {where}" if where.startswith("--config") else \
        f"the stored {name} {value} ({where})"
    return f"with {with_}, {of} no longer fits: {e}; give {words.option(name)} too"


def _check_used(config, asked, config_file, words):
    """Refuse settings asked for (``asked``: given, or in the ``--config`` file
    ``config_file``) that the model kind or the method would ignore (a silently ignored
    setting reads as if it had taken effect)."""
    method, model = config.method, config.model
    where = f"--config {config_file}: " if config_file else ""
    name_of = (lambda name: name) if config_file else words.option
    leave_out = (lambda name: f"remove {name} from it") if config_file else \
        (lambda name: f"leave {words.option(name)} out")
    unused = None
    if "bits" in asked and method != "joint":
        unused = ("bits", "the joint method's target average weight bits",
                  f"give {words.flag('method', 'joint')}, or {leave_out('bits')}")
    elif "sparsity" in asked and method == "none":
        unused = ("sparsity", "a compression method's target",
                  f"give a {words.option('method')}, or {leave_out('sparsity')}")
    for name in ("compress_epochs", "finetune_epochs"):
        if name in asked and method == "none":
            unused = unused or (name, "the epochs of a compression method",
                                f"give a {words.option('method')}, or {leave_out(name)}")
    if "compress_epochs" in asked and method == "lstm_gates":
        unused = unused or ("compress_epochs", "the epochs of a compression method",
                            f"it prunes at once, then fine-tunes: "
                            f"{words.option('finetune_epochs')}")
    if unused:
        name, what, hint = unused
        raise FlowError(f"{where}{name_of(name)} is {what}; {words.flag('method', method)} "
                        f"does not use it ({hint})")
    for chosen in ("lanes", "copies"):
        if chosen in asked and config.objective is not None and (
                method != "balanced" or chosen == "copies"):
            back = ('"objective": null in it' if config_file else
                    words.flag("objective", "none" if words is CLI_WORDS else None))
            raise FlowError(f"{where}{name_of(chosen)} is chosen by the planner with "
                            f"{words.flag('objective', config.objective)} "
                            f"({leave_out(chosen)}, or give {back} to choose it yourself)")
    for name, what, kinds, note in (
            ("sizes", "the MLP's layer sizes", ("mlp",), None),
            ("hidden", "the LSTM's hidden units", ("lstm",), None),
            ("engine", "the engine choice of the MLP, the CNN and --net networks",
             ("mlp", "cnn", "net"), "its gates and head share sparse lanes"),
            ("layout", "the MLP's and the CNN's sparse layout", ("mlp", "cnn"),
             "its gates and head share sparse lanes")):
        if name in asked and model not in kinds:
            raise FlowError(f"{where}{name_of(name)} is {what}; {words.flag('model', model)} "
                            f"does not use it" + (f" ({note})" if note else ""))
    if "weight_bits" in asked and method == "joint" and model != "lstm":
        raise FlowError(f"{where}{name_of('weight_bits')} is not used with "
                        f"{words.flag('method', 'joint')}, which chooses each layer's width "
                        f"(its average: {name_of('bits')})")
