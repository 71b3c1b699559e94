"""The training loop shared by the compression methods: weight transforms, masks held at zero,
and per-step callbacks.

``train_compressed`` runs mini-batch training like :func:`slimgen.sw.nn.train` with three hooks:

- a **transform** (methods 3, 5, 6) owns some weight arrays: the layers compute with
  ``W_eff = T(W)`` and the raw weights W receive ``dL/dW = T'(W)ᵀ dL/dW_eff`` plus the gradient
  of the transform's penalty; the transform's own parameters (thresholds, bit-width logits)
  descend with their own learning rate;
- **masks** ``{(layer, name): bool array}``: the gradient of a masked weight is zeroed and the
  weight is set back to exactly 0 after every optimizer step (weight decay and Adam's momentum
  cannot revive it);
- **callbacks** see the state after every optimizer step (``after_step(state)``) and at the end
  of each epoch (``epoch_end(state) -> dict``): gradual magnitude pruning updates the masks there,
  sign-directed sparsification shrinks the weights there.

With ``distill`` = a > 0 the loss takes a soft-target term from a teacher (knowledge
distillation; the teacher is the dense model the method started from, its logits ``t`` on the
training inputs given as ``teacher``), at temperature T:

``L = (1 − a) · CE(z, y) + a · T² · CE(softmax(t/T), softmax(z/T))``,
``dL/dz = [(1 − a)(softmax(z) − onehot(y)) + a · T (softmax(z/T) − softmax(t/T))] / n``.

Weight arrays are the matrices of Dense and Conv2d (``W``) and of LSTM (``W_*``, ``U_*``); biases
are never pruned. Keys are ``(layer_index, name)`` as in ``Sequential.named_parameters``.
"""

from dataclasses import asdict, dataclass

import numpy as np

from slimgen.sw.nn.loss import log_softmax, softmax, softmax_cross_entropy
from slimgen.sw.nn.optim import OPTIMIZERS, make_optimizer
from slimgen.sw.nn.schedule import SCHEDULES, lr_factor
from slimgen.sw.nn.train import ProgressBar, evaluate

__all__ = ["FitConfig", "TrainState", "train_compressed", "weight_keys", "get_param",
           "sparsity", "layer_sparsity", "apply_masks", "masks_from_zeros", "count_weights",
           "Compressed", "distill_loss", "teacher_logits"]


@dataclass(frozen=True)
class FitConfig:
    """Hyper-parameters of one training phase; validated where built.

    ``lr`` for the weights and biases, ``lr_threshold`` for the transform's own parameters;
    ``keep_best`` restores the epoch with the best validation accuracy (with a transform, its
    raw weights; a phase that changes the sparsity should keep its last epoch); ``distill`` the weight
    a of the soft-target term and ``temperature`` its T (see the module docstring).
    """
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    lr_threshold: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    schedule: str = "constant"
    seed: int = 0
    keep_best: bool = False
    distill: float = 0.0
    temperature: float = 4.0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        for name in ("lr", "lr_threshold"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if not 0 <= self.distill <= 1:
            raise ValueError(f"distill must be in [0, 1], not {self.distill!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, not {self.temperature!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be non-negative, not {self.weight_decay!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"not {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                             f"not {self.schedule!r}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    def replace(self, **changes):
        return type(self)(**{**asdict(self), **changes})


def weight_keys(model):
    """Keys of every prunable weight array, in layer order."""
    keys = []
    for i, layer in enumerate(model.layers):
        if layer.kind in ("dense", "conv1d", "conv2d"):
            keys.append((i, "W"))
        elif layer.kind in ("lstm", "gru"):
            keys += [(i, n) for n in layer.params if n[0] in "WU"]
    return keys


def get_param(model, key):
    i, name = key
    return model.layers[i].params[name]


def count_weights(model, keys=None):
    keys = weight_keys(model) if keys is None else keys
    return sum(get_param(model, k).size for k in keys)


def sparsity(model, keys=None):
    """Fraction of exactly-zero entries over the weight arrays ``keys`` (default: all)."""
    keys = weight_keys(model) if keys is None else keys
    zeros = sum(int(np.sum(get_param(model, k) == 0)) for k in keys)
    return zeros / max(count_weights(model, keys), 1)


def layer_sparsity(model, keys=None):
    keys = weight_keys(model) if keys is None else keys
    return {f"{i}.{n}": float(np.mean(get_param(model, (i, n)) == 0)) for i, n in keys}


def apply_masks(model, masks):
    """Set every masked-out weight to exactly 0, in place."""
    for key, m in masks.items():
        get_param(model, key)[...] *= m


def masks_from_zeros(model, keys=None):
    """Masks that keep the currently non-zero weights."""
    keys = weight_keys(model) if keys is None else keys
    return {k: get_param(model, k) != 0 for k in keys}


def distill_loss(z, y, t, a, T):
    """The loss of the module docstring and ``dL/dz``; z, t (n, k) logits, y (n,) labels."""
    loss, dLdz = softmax_cross_entropy(z, y)
    if a == 0:
        return loss, dLdz
    n = len(z)
    pt = softmax(t / T)
    soft = -float(np.sum(pt * log_softmax(z / T))) / n
    return ((1 - a) * loss + a * T * T * soft,
            (1 - a) * dLdz + a * T * (softmax(z / T) - pt) / n)


def teacher_logits(model, data):
    """The model's logits on ``data.part("train")``: the teacher of a later phase."""
    return model.forward(data.part("train")[0], train=False)


class TrainState:
    """What callbacks see: the model, its raw weights, the masks, the step and epoch counters."""

    def __init__(self, model, raw, masks, total_steps, rng):
        self.model, self.raw, self.masks = model, raw, masks
        self.step, self.epoch, self.total_steps, self.rng = 0, 0, total_steps, rng


class _View:
    """The parameter list an optimizer updates: raw weights in place of transformed ones."""

    def __init__(self, model, raw, raw_grads, transform, which):
        self.model, self.raw, self.raw_grads = model, raw, raw_grads
        self.transform, self.which = transform, which

    def named_parameters(self):
        if self.which == "net":
            for key, p, g in self.model.named_parameters():
                if key in self.raw:
                    yield key, self.raw[key], self.raw_grads[key]
                else:
                    yield key, p, g
        elif self.transform is not None:
            yield from self.transform.parameters()


def _set_effective(model, raw, transform):
    for key, w in raw.items():
        i, name = key
        model.layers[i].params[name] = transform.forward(key, w)


def train_compressed(model, data, config=FitConfig(), *, transform=None, masks=None,
                     callbacks=(), progress=False, label="compress", teacher=None):
    """Train ``model`` on ``data.part("train")`` with a transform, masks and callbacks (see the
    module docstring). Returns the history, a list of per-epoch dicts.

    With a transform the model's weight arrays hold the raw weights afterwards (the caller
    turns them into hard ones); masks are applied before the first step. Shuffling, and every
    random draw a callback makes through ``state.rng``, come from ``config.seed``.
    ``teacher``: logits (n_train, k) for ``config.distill``; default: the model's own at entry.
    """
    x, y = data.part("train")
    xv, yv = data.part("val")
    masks = dict(masks or {})
    if config.distill and teacher is None:
        teacher = model.forward(x, train=False)
    if teacher is not None and np.shape(teacher)[0] != len(x):
        raise ValueError(f"teacher must hold logits for the {len(x)} training inputs, "
                         f"not {np.shape(teacher)[0]}")
    rng = np.random.default_rng(config.seed)
    opt = make_optimizer(config.optimizer, config.lr, weight_decay=config.weight_decay)
    opt_t = make_optimizer("adam", config.lr_threshold)
    keys = list(transform.keys) if transform is not None else []
    raw = {k: get_param(model, k) for k in keys}            # the arrays the optimizer updates
    apply_masks(model, masks)
    steps_per_epoch = -(-len(x) // config.batch_size)
    total = config.epochs * steps_per_epoch
    state = TrainState(model, raw, masks, total, rng)
    net = _View(model, raw, {}, transform, "net")
    thr = _View(model, raw, {}, transform, "thr")
    if transform is not None:
        transform.attach(model)
    bar = ProgressBar(config.epochs, label, enabled=progress)
    history, best = [], (-1.0, None)
    try:
        for epoch in range(config.epochs):
            order = rng.permutation(len(x))
            loss_sum = pen_sum = 0.0
            correct = 0
            for s in range(0, len(x), config.batch_size):
                idx = order[s:s + config.batch_size]
                if transform is not None:
                    transform.zero_grad()
                    _set_effective(model, raw, transform)
                logits = model.forward(x[idx], train=True)
                if config.distill:
                    loss, dLdz = distill_loss(logits, y[idx], teacher[idx], config.distill,
                                              config.temperature)
                else:
                    loss, dLdz = softmax_cross_entropy(logits, y[idx])
                model.backward(dLdz)
                if transform is not None:
                    for key in keys:
                        i, name = key
                        net.raw_grads[key] = transform.backward(key, raw[key],
                                                                model.layers[i].grads[name])
                    pen, pgrads = transform.penalty(raw)
                    for key, g in pgrads.items():
                        net.raw_grads[key] = net.raw_grads[key] + g
                    pen_sum += pen * len(idx)
                for key, m in masks.items():
                    i, name = key
                    if key in net.raw_grads:
                        net.raw_grads[key] = net.raw_grads[key] * m
                    else:
                        model.layers[i].grads[name] = model.layers[i].grads[name] * m
                if config.schedule != "constant":
                    f = lr_factor(config.schedule, state.step, total)
                    opt.lr, opt_t.lr = config.lr * f, config.lr_threshold * f
                opt.step(net)
                if transform is not None:
                    opt_t.step(thr)
                    transform.after_step(raw)
                apply_masks(model, masks)
                for cb in callbacks:
                    cb.after_step(state)
                loss_sum += loss * len(idx)
                correct += int(np.sum(np.argmax(logits, axis=1) == y[idx]))
                state.step += 1
            state.epoch = epoch + 1
            if transform is not None:
                _set_effective(model, raw, transform)
            val_acc = evaluate(model, xv, yv) if len(xv) else float("nan")
            record = {"epoch": epoch + 1, "loss": loss_sum / len(x), "penalty": pen_sum / len(x),
                      "train_acc": correct / len(x), "val_acc": val_acc}
            if transform is not None:
                record.update(transform.epoch_end(raw))
            for cb in callbacks:
                record.update(getattr(cb, "epoch_end", lambda st: {})(state))
            if transform is None:
                record["sparsity"] = sparsity(model)
            history.append(record)
            if config.keep_best and val_acc >= best[0]:
                st = model.state()
                st.update({f"{i}.{n}": w.copy() for (i, n), w in raw.items()})  # raw, not W_eff
                best = (val_acc, st)
            bar.update(loss=record["loss"], val_acc=val_acc)
    finally:
        if transform is not None:
            transform.detach()
            for key, w in raw.items():                      # the model holds the raw weights
                i, name = key
                model.layers[i].params[name] = w
    if best[1] is not None:
        model.load_state(best[1])
    return history


@dataclass
class Compressed:
    """What a compression method returns.

    ``model`` is the compressed float model (pruned weights exactly 0; it is the model passed
    in, changed in place); ``masks`` the kept weights; ``info`` the JSON-able figures that go
    into the artifact's ``extra["compression"]`` (method, sparsity, layer_weight_bits, groups,
    layout, ...); ``history`` the per-epoch records of every phase.
    """
    model: object
    masks: dict
    info: dict
    history: list
