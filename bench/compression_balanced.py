"""The balanced-sparsity part of ``bench/compression.py`` (method 5, MLP 64-64-10): both
layouts, 4 and 8 groups, 90 % and 95 % zero, with the settings chosen for them on validation.

Kept apart so that the balanced settings have one home; run it through
``python bench/compression.py --parts mlp_balanced``.
"""

from slimgen.sw.compress.balanced import BalancedConfig, balanced_prune
from slimgen.sw.compress.masked_train import FitConfig

__all__ = ["run_balanced"]

# Input banks: a light term, and the pixels tiled over the banks (sw/compress/balanced.py).
# Chosen on validation (5 seeds, G = 4 and 8, 90 % and 95 %): of the input orders natural,
# dealt and tiled, tiled had the best mean validation accuracy and cross-entropy. Tried and
# dropped: an order learned from a self-pruned copy's mask (no better, a second training),
# gradual hard prunes (80 % then 90 % before 95 %: worse validation cross-entropy), a
# stronger balance term (λ_b 1, η_b 10: worse), 300 fine-tuning epochs (no change).
BANKS = dict(lam_balance=0.1, lr_balance=1.0, input_order="tiled")
# Fine-tuning of both layouts: cosine schedule from 3e-3, distilled from the dense model (half
# soft targets); distillation lowered the validation cross-entropy in every configuration.
BAL_FT = FitConfig(lr=3e-3, batch_size=32, schedule="cosine", distill=0.5)
# The soft phase of row groups distilled from the dense model too (half soft targets): lower
# validation cross-entropy over G = 4, 8 and 90 %, 95 % (−0.0145 ± 0.0043, 16 of 20 seed-configs);
# for input banks it was noise (−0.0083 ± 0.0119, 12 of 20), so not there.
ROWS_FIT = dict(distill=0.5)


def run_balanced(seed, quick, data, fresh, add, *, fit, prune):
    """Every balanced configuration on one seed; results go through ``add`` as in the bench.

    ``fresh()`` gives the dense model reloaded, ``prune(target, **overrides)`` the
    self-pruning configuration the bench uses at that target."""
    for layout in ("rows", "banks"):
        for groups in (4, 8):
            for t in ((0.95,) if quick else (0.9, 0.95)):
                sp = prune(t, **({} if quick else {"finetune_epochs": 150}))
                bc = BalancedConfig(groups=groups, layout=layout, prune=sp,
                                    **(BANKS if layout == "banks" else {}))
                f = fit.replace(**ROWS_FIT) if layout == "rows" and not quick else fit
                r = balanced_prune(fresh(), data, bc, fit=f, finetune=BAL_FT)
                counts = r.info["group_counts"]
                exact = all(len(set(v)) == 1 if layout == "rows"
                            else all(len(set(row)) == 1 for row in v)
                            for v in counts.values())
                add("mlp", f"balanced_{layout}_{groups}", t, r.model, data,
                    extra={"exact_balance": bool(exact)})
