"""Normalization at small batch sizes: no normalization, BatchNorm, and method 1 (Lagrangian
normalization, ``slimgen.sw.compress.lagrangian_norm``) on plain CNNs at batch sizes 1, 2, 4, 8
and 64.

The headline model is a deep plain CNN (``deep_cnn_spec``: 8 conv3x3 layers of 16 channels, no
residual connections) trained for a fixed, short budget of epochs per batch size, on which
training without normalization visibly lags. ``--small`` adds the small digits CNN (too easy to
show anything: every variant reaches 98-99 %).

Selection (validation only, the same procedure for every variant). The seed-0 training and
validation parts (1,437 samples; the test part is never evaluated while choosing) are pooled and
cut (seeded) into disjoint folds of 144; ``--folds`` (5) of them serve as validation, seed k on
fold k, trained on the other 1,293. For every batch size and variant, the learning rate (1e-3,
3e-3, 1e-2; Adam, cosine schedule; 3e-3 and 1e-2 for method 1, see ``M1_LR_GRID``) and for
method 1 the initial multiplier λ0 (0.003, 0.03) and whether it starts from the data-dependent
initialisation (``--data-init tune``, below), and for every variant whether it trains with
gradient clipping and warm-up (``--stable tune``, below), are picked by the **lowest mean validation
cross-entropy** over the folds (the figures, with the accuracy, are printed under "tuning" and
kept in the JSON); then 5 seeds train with the pick on the seed-0 split and the test accuracy is
reported (mean ± standard deviation). Why: validation
accuracy saturates at batch 8 (99.65 % for both BatchNorm and method 1, one error in 288, under
the earlier selection by the accuracy of seeds 0 and 1 on the one 144-sample validation split),
so it could not separate candidates; the cross-entropy of 720 held-out samples can. Five folds,
not three: with three, method 1's pick at batch 8 (lr 1e-2, λ0 0.03, with γ, β: 0.097 on folds
0-2) was a lucky draw, 0.251 / 95.25 % on folds 3-8 against 0.136 / 98.38 % for lr 3e-3, λ0 0.003
(a check run after the three-fold test figures below had been seen).

Method 1 in the bench (``--affine``, the default) puts a per-channel affine map γ, β
(``slimgen.sw.nn.affine.ChannelAffine``) after every constrained convolution: the penalty acts on
the convolution's output, and γ, β give the network back the free scale and shift per channel
that BatchNorm's γ, β give it (the plain penalty pins every ReLU input to mean 0 and variance 1,
and the logits it feeds stay small: underconfident). After training the affine maps are folded
into the convolutions, so no layer of method 1 is left at inference, and the folded model is the
one evaluated. ``--no-affine`` runs the plain penalty.

Stable training (``--stable``, a grid axis for every variant, default ``tune``): the global
gradient norm clipped at 1 and the learning rate warmed up linearly over the first epoch. Why:
method 1's batch-8 runs were bimodal (test 96.39 / 96.39 / 97.50 / 98.89 / 98.89 on seeds 0-4, see
below) and a step of lr 1e-2 through eight unnormalized layers can blow up. Explored on
validation (batch 8, method 1, lr 1e-2, λ0 0.003, data init; 5 folds' mean cross-entropy):
plain 0.0915, clip 1 0.0636, clip 3 0.0751, clip 0.3 0.0531, one epoch of warm-up 0.0675, clip 1
with warm-up 0.0441; BatchNorm (lr 1e-2) 0.0387 → 0.0348 with clip 1; so it helps every variant,
and it is offered to every variant alike (off first: a tie keeps it off). Full run (``--seeds 5
--jobs 2``, 700 tuning runs on 5 folds, 75 final runs, 1,080 s on a 2-core machine shared with a
light second job; test % mean ± std; picks lr / λ0, * data init, s stable):

    batch  none                   BatchNorm               method 1 (γ, β)
      1    95.06 ± 0.83 (3e-3 s)  72.11 ± 4.84 (1e-2 s)   94.89 ± 0.82 (1e-2 / .03*s)
      2    92.06 ± 1.70 (1e-3)    94.83 ± 0.74 (1e-2 s)   95.89 ± 0.67 (1e-2 / .003*s)
      4    96.00 ± 0.94 (3e-3 s)  97.44 ± 0.67 (1e-2 s)   97.33 ± 0.42 (1e-2 / .003 s)
      8    96.00 ± 0.38 (1e-2 s)  97.61 ± 0.72 (1e-2 s)   97.17 ± 0.57 (1e-2 / .003*s)
     64    95.94 ± 0.52 (1e-2 s)  98.39 ± 0.37 (1e-2 s)   97.11 ± 0.45 (1e-2 / .003*s)

and the confirmation on seeds 5-9 with the same picks (``--first-seed 5 --seeds 5 --tuning
LOG``, the final runs only, 198 s):

    batch  none          BatchNorm      method 1 (γ, β)
      1    94.83 ± 1.16  71.28 ± 5.30   95.39 ± 0.52
      2    92.00 ± 0.90  94.67 ± 1.70   95.89 ± 0.95
      4    95.94 ± 0.57  97.22 ± 0.61   97.22 ± 0.56
      8    96.78 ± 0.28  98.00 ± 0.37   97.22 ± 0.61
     64    95.72 ± 0.94  97.67 ± 0.38   96.83 ± 0.52

Goals with stable training: batch 2 (beats BatchNorm; closes 0.61 and 0.69 of the gap) and
batch 4 (97.33 ≥ 97.44 − 0.67; 97.22 ≥ 97.22 − 0.61) met on both sets of seeds; batch 8 met on
seeds 0-4 (97.17 ≥ 97.61 − 0.72) and **missed** on 5-9 (97.22 < 98.00 − 0.61 = 97.39), as without
it; **batch 1 missed** on both: method 1 beats BatchNorm by 23-24 points but does not close half of
the gap (−0.05 and 0.20 of it): clipping with warm-up lets the plain CNN train at batch 1 (none
93.72 → 95.06 on seeds 0-4), and method 1's pick (by cross-entropy, 0.126 against 0.258 without
stable training) has the lower validation accuracy (96.67 % against 97.78 %). So with the
stronger, equal tuning of every variant the batch-1 win below does not hold, and batch 8 stays
seed-dependent. The run without the axis follows (``--stable off``).

Running estimates (``--momentum tune``: method 1's ρ of ``LagrangianNormConfig.momentum``, 0 or
0.9, a further grid axis; off by default, see below). Why: at batch 1 the statistics of a
constrained channel run over one image's positions, so the penalty pins every image's own
channel mean and variance, as instance normalization would, and removes what a channel's
overall level says about that image; running estimates pin the population's instead. Explored
on validation (batch 1, stable, data init, 5 folds' mean cross-entropy; no test figure seen):
at lr 3e-3, λ0 0.03, ρ 0 / 0.9 / 0.99 0.2145 / 0.0858 / 0.0845 (lower on all 5 folds), λ0 0.003
with ρ 0.9 0.0930, ρ 0.9 in the ascent only (``--running ascent``) 0.1749, ρ 0.9 without the data
init 0.1323 or without stable training 0.1422; at lr 1e-2, λ0 0.03 (the pick without the axis,
0.1263), ρ 0.5 / 0.9 / 0.99 0.1132 / 0.2432 / 0.2112. Full run with the axis (``--momentum tune
--seeds 5 --jobs 2``, 1,100 tuning runs, 2,171 s with a light second job; it picked ρ 0.9 at
batch 1, 2, 8 and 64, ρ 0 at batch 4; seeds 0-4, then the same picks on seeds 5-9 with
``--tuning LOG``, 107 s), method 1's test % (the other variants are unchanged):

    batch  pick (lr / λ0)      seeds 0-4      seeds 5-9      without the axis (0-4 / 5-9)
      1    3e-3 / .03*s ρ .9   96.00 ± 0.52   94.94 ± 0.62   94.89 / 95.39
      2    3e-3 / .03*s ρ .9   95.78 ± 0.92   95.00 ± 0.43   95.89 / 95.89
      4    1e-2 / .003 s       97.33 ± 0.42   97.22 ± 0.56   97.33 / 97.22
      8    1e-2 / .003 s ρ .9  96.50 ± 1.02   97.11 ± 0.48   97.17 / 97.22
     64    1e-2 / .003*s ρ .9  96.78 ± 0.74   96.67 ± 0.30   97.11 / 96.83

Goals: batch 1 still **missed** on both sets (closes 0.28 and 0.04 of the gap), batch 2 and 4 met
on both, batch 8 **missed** on both (96.50 < 97.61 − 1.02; 97.11 < 98.00 − 0.48). The validation
gain at batch 1 (0.126 → 0.086) gave +1.1 points on seeds 0-4 and −0.45 on seeds 5-9: on the
test split it is not a gain. The axis stays available and off by default: it gives method 1 32
grid points against the baselines' 6, doubles the bench's time, and did not improve a goal on
either set of seeds (a default set after these test figures were seen, stated as such).

Measured without stable training (``--stable off``, the bench before the axis: ``--seeds 5
--jobs 2``, 5 folds,
γ, β, ``--data-init tune``; test % mean ± std over 5 seeds; picks lr / λ0, * with the
data-dependent initialisation; 518 s on a shared 2-core machine; reproduced figure for figure by
``--stable off --tuning LOG`` at the final code, with the folds of the stable run's log, 166 s):

    batch  none                  BatchNorm               method 1 (γ, β)
      1    93.72 ± 0.99 (1e-3)   61.11 ± 13.25 (1e-2)    96.56 ± 0.65 (3e-3 / .003*)
      2    92.06 ± 1.70 (1e-3)   92.67 ±  1.33 (1e-2)    96.67 ± 0.72 (3e-3 / .003)
      4    93.28 ± 1.46 (1e-3)   97.44 ±  0.27 (1e-2)    97.06 ± 0.54 (3e-3 / .003)
      8    95.11 ± 0.91 (3e-3)   97.94 ±  0.38 (1e-2)    97.61 ± 1.12 (1e-2 / .003*)
     64    91.33 ± 1.22 (3e-3)   97.78 ±  0.53 (1e-2)    93.72 ± 2.06 (1e-2 / .003)

Goals: all met on seeds 0-4 (but see the confirmation below). Batch 1 and 2: method 1 beats
BatchNorm and closes 0.70 and 0.81 of the gap by the judged reading (thresholds 95.75 and
94.92; 0.44 (missed) and 0.72 by the batch-64 relative one, 0.81 and 0.83 by the midpoint one);
batch 4: 97.06 ≥ 97.44 − 0.54; batch 8: 97.61 ≥ 97.94 − 1.12 (and ≥ 97.94 − 0.38, BatchNorm's
own spread). Method 1 at batch 64 (93.72) trails BatchNorm (97.78) for the reason given below
(training speed in the budget).

Its confirmation on seeds no choice had seen (``--first-seed 5 --seeds 5``: the same tuning and
picks, final runs with seeds 5-9 on the same split; run once, after every choice above; 805 s
beside a CI run):

    batch  none          BatchNorm      method 1 (γ, β)
      1    92.94 ± 1.17  55.50 ± 9.24   96.22 ± 0.57
      2    92.00 ± 0.90  92.17 ± 2.76   95.78 ± 0.57
      4    93.94 ± 1.12  96.61 ± 0.89   97.17 ± 0.64
      8    95.17 ± 1.00  97.94 ± 0.42   97.06 ± 0.72
     64    90.33 ± 1.85  98.06 ± 0.46   93.78 ± 3.80

Batch 1, 2 and 4 hold (batch 1 and 2 close 0.64 and 0.62 of the gap by the judged reading);
**batch 8 misses** there (97.06 < 97.94 − 0.72 = 97.22, by 0.16). With seeds 0-4 method 1's batch-8
runs split into 96.39, 96.39, 97.50, 98.89, 98.89: the goal at batch 8 is met on one set of seeds
and missed on the next, so it is not reliably met.

Data-dependent initialisation (``data_init`` in ``lagrangian_norm``; ``--data-init``). At
initialisation the deep CNN's conv outputs shrink with depth (channel variance 0.30, 0.50, 0.30,
0.20, 0.18, 0.19, 0.14, 0.12 through the 8 convs, |mean| 0.30-0.55, on 512 training inputs, seed
0), so method 1's penalty starts far from satisfied and fights the loss from the first step.
``data_init`` scales and shifts each constrained conv, first to last, to mean 0 and variance 1
per channel on 256 training inputs (LSUV-style), so the penalty starts at zero on them. Validation
(5 folds, lowest mean cross-entropy of method 1's 4 grid points, without / with it): batch 1
0.2646 / 0.2583, batch 2 0.2399 / 0.2443, batch 4 0.1383 / 0.1600, batch 8 0.1311 / 0.0915
(lr 1e-2 no longer diverges there: 0.2056 → 0.0915 at λ0 0.003), batch 64 0.2324 / 0.2766. It
helps at batch 1 and 8, not at 2, 4, 64, so it is a grid axis (``--data-init tune``, the
default), picked per batch size on validation like lr and λ0 (off first: a tie keeps it off);
``on`` / ``off`` force it. How this came about, in order: ``--data-init on`` was run first
(full run, 484 s): validation picks as above, test batch 1 96.56 ± 0.65, 2 96.67 ± 0.68, 4
84.44 ± 24.06 (lr 1e-2 / λ0 0.03, picked at 0.1600 against 0.1671; one seed of five collapsed to
36.39 %, the others 94.2-97.8: the spread check "passed" only because of that collapse), 8 97.61
± 1.12, 64 95.22 ± 1.63. Only then were the "off" figures at batch 2, 4, 64 measured on validation
and the grid axis added, so the idea of ``tune`` followed a look at that test figure; the pick
itself is by validation alone. Also tried at batch 8 with the data init (validation, 5 folds, lr
1e-2): λ0 0.001 0.1282, λ0 0.01 0.1169 (λ0 0.003: 0.0915); the λ0 grid stays.

Measured with three folds (``--folds 3 --seeds 5 --jobs 2``; test % mean ± std over 5 seeds;
picks lr / λ0; 1,274 s and 1,466 s on a shared, loaded 2-core machine):

    batch  none            BatchNorm        method 1 (γ, β)          method 1 plain (--no-affine)
      1    93.72 ± 0.99    61.11 ± 13.25    96.56 ± 0.14 (3e-3/.003)  96.72 ± 0.71 (3e-3/.003)
      2    92.06 ± 1.70    92.67 ±  1.33    96.67 ± 0.72 (3e-3/.003)  96.61 ± 0.92 (3e-3/.003)
      4    94.56 ± 0.78    97.44 ±  0.27    97.06 ± 0.54 (3e-3/.003)  96.33 ± 0.48 (1e-2/.03)
      8    95.11 ± 0.91    97.94 ±  0.38    94.78 ± 1.90 (1e-2/.03)   95.67 ± 1.36 (1e-2/.003)
     64    91.33 ± 1.22    97.78 ±  0.53    93.72 ± 2.06 (1e-2/.003)  95.39 ± 0.96 (1e-2/.003)

(none picked lr 1e-3, 1e-3, 3e-3, 3e-3, 3e-3; BatchNorm 1e-2 at every size.) Goals with
γ, β: batch 1 and 2 met (beats BatchNorm; closes 0.70 and 0.81 of the gap by the judged reading,
0.44 and 0.72 by the batch-64 relative one, 0.81 and 0.83 by the midpoint one), batch 4 met
(97.06 against 97.44 − 0.54), **batch 8 missed** (94.78 against 97.94 − 1.90: one seed of five
at 91.39, the others 94.7-96.9). The plain penalty misses batch 4 and 8. The choice of γ, β was
made on validation before these test figures (it lowered the picked cross-entropy at every batch
size: 0.257 / 0.234 / 0.135 / 0.097 / 0.232 against 0.429 / 0.351 / 0.193 / 0.120 / 0.234); the
lr grid was cut to 3e-3 and 1e-2 for method 1 after, which does not change a pick.

Exploration for this round (validation folds 0-2, seed k on fold k, mean cross-entropy / accuracy %;
lr 1e-2, λ0 0.03, 4 epochs at batch 8 unless said; no test figure was looked at):

- batch 8: BatchNorm 0.043 / 98.61 (lr 3e-3: 0.074 / 99.07); method 1 plain 0.159 / 98.84
  (λ0 0.003: 0.120 / 98.61; λ0 0.1: 0.389 / 96.30; lr 3e-3: 0.265 / 97.69; trainable v with
  η_v 0.01 / 0.1: 0.146 / 98.15, 0.114 / 98.61); **with γ, β: 0.097 / 98.15** (λ0 0.003 / 0.01 /
  0.1 / 0.3: 0.259 / 0.174 / 0.299 / 1.236; lr 3e-3: 0.171 / 98.38); the projected loss gradient
  (``LagrangianNormConfig.project``) 0.156 / 98.61 (λ0 0.003: 0.181 / 99.31), with γ, β 0.066 /
  98.38; the penalty's gradient kept out of the layers below the constrained one ("local")
  0.343 / 95.37; 8 epochs instead of 4: BatchNorm 0.027 / 99.54, plain 0.065 / 99.31, with γ, β
  0.059 / 98.61.
- batch 1 and 2 (lr 3e-3): plain 0.455 / 98.15 (batch 1), with γ, β 0.284 / 98.84 (batch 1),
  0.252 / 98.61 (batch 2); at lr 1e-2 γ, β made one fold of three diverge at both sizes; the
  projection fails at batch 1 (1.970 / 55.79: over one image it removes every per-image shift and
  scale from the gradient) and is worse at batch 2 (0.719 / 95.14), so it stays off.
- batch 4: BatchNorm 0.070 / 98.15, plain 0.193 / 98.38, with γ, β 0.175 / 96.99.
- batch 64 (6 epochs, 126 steps): BatchNorm 0.049 / 99.77; plain 0.932 / 80.32, λ0 0.003 0.234 /
  97.45; with γ, β 0.958 / 78.70, λ0 0.003 0.232 / 96.30, λ0 0.3 2.131 / 25.46; local 0.996 /
  81.48; projected 0.512 / 96.30, λ0 0.003 0.308 / 99.07; 20 epochs: BatchNorm 0.011 / 100,
  plain 0.107 / 98.61, λ0 0.003 0.064 / 99.07, none (lr 3e-3) 0.075 / 98.38.
- the penalty's gradient applied by plain SGD outside Adam (decoupled, as AdamW's weight decay):
  on the penalty alone, one batch repeated, it oscillated at step 0.01 and diverged at 0.1 (the
  penalty through 8 layers is badly conditioned); not pursued.

Why method 1 trails BatchNorm at batch 64: not noisy statistics (a batch of 64 estimates them
well) but training speed in the short budget. The stronger the penalty the slower the training
(λ0 0.003 / 0.03 / 0.3: 97.5 / 80.3 / 25.5 % on validation, with γ, β), because the loss
gradient keeps moving the statistics and the penalty pulls them back, where BatchNorm's backward
pass removes those directions from the gradient outright; projecting them out of the loss
gradient the same way lifts validation accuracy to 99.07 % but leaves the cross-entropy high
(logits still small after 126 steps), and with 20 epochs instead of 6 method 1 reaches 98.6-99.1 %
(BatchNorm 100 %). So the gap at batch 64 comes from the budget, and the penalty's cost grows
with λ.

Earlier rounds (selection then by the mean validation accuracy of seeds 0 and 1 on the 144-sample
validation split, plain penalty). Exploring method 1 at batch 8
on validation (mean of seeds 0 and 1, 4 epochs): λ0 0.03 at lr 1e-3 / 3e-3 / 1e-2 gave 91.3 /
97.9 / 99.7 %; larger multipliers (λ0 0.3, or η_λ 0.01 instead of 1e-4) held the activations
closer to the targets and wrecked accuracy (54-72 %); a fixed λ (η_λ 0) 98.3 %; a trainable v
(η_v 0.01) 99.0 % at lr 3e-3 (within the two seeds' noise of 97.9 %); constraining the ReLU
outputs ("post") 95.5 %. So the learning rate was what method 1 lacked; 1e-2 joined the grid for
every variant.

A second round at batch 8 (same procedure, lr 1e-2 unless said, validation mean of seeds 0 and 1;
the then pick λ0 0.03 reached 99.65 %, one error in 288) tried the options that
``LagrangianNormConfig`` gained for it, all off by default, and none beat the pick:
running estimates of μ and σ² in the penalty and the ascent (``momentum`` ρ 0.1 / 0.2 / 0.5 /
0.9: 98.6 / 99.0 / 95.8 / 25.4 %; ρ 0.9 with λ0 0.3: 16.7 %), in the multipliers' ascent only
(``running="ascent"``, ρ 0.5 / 0.9 / 0.99: 99.0 / 97.9 / 98.6 %; ρ 0.99 with λ0 0.01: 99.0 %;
ρ 0.9 at lr 3e-3: 97.6 %), a penalty warm-up (``warmup`` 20 / 40 / 160 / 320 steps of ~640:
99.3 / 99.3 / 97.9 / 96.9 %; 320 with λ0 0.1: 99.0 %), the variance term alone (``terms="var"``,
λ0 0.03 / 0.1: 64.6 / 49.7 %: the means drift, train |μ| 0.93) or the mean term alone (55.9 %),
multiplier steps η_λ 0 / 3e-5 / 1e-3 (98.6 / 99.0 / 98.6 %), λ0 0.01 / 0.02 / 0.04 / 0.05 / 0.1
(99.3 / 99.0 / 98.6 / 96.5 / 86.8 %), lr 2e-2 (95.5 %). ``--momentum``/``--running`` run the
bench with the running estimates.

"act. |mean|"/"act. var" are the channel means and variances of the ReLU inputs (conv outputs,
BatchNorm outputs, or for method 1 with γ, β the folded conv outputs, i.e. after γ, β) measured per
channel over batches of the training batch size drawn from the test set in inference mode,
averaged over channels, layers and seeds (|mean| and var). "train |μ|"/"train σ²" are those of
method 1's constrained activations (the conv outputs, before γ, β) during training: over the
batches of its last epoch, as the penalty saw them (targets 0 and 1). "val ce" is the final
runs' cross-entropy on the seed-0 validation split.

Goals (issue 3): at batch 1 and 2 method 1 beats BatchNorm and closes at least half of the gap
between no normalization and BatchNorm at batch 64; at batch 4 and 8 it matches BatchNorm within
the seeds' spread (mean at least BatchNorm's minus the larger standard deviation). "The gap" has
three readings, all printed and kept in the JSON (``check_goals``); the bench judges by the first,
the plain reading (the gap from no normalization to BatchNorm at batch 64, measured at the batch
in question): ``m1_b ≥ none_b + ½ (BN_64 − none_b)``; the others are ``(m1_b − none_b) /
(BN_64 − none_64) ≥ ½`` (the batch-64 gap's size, closed from no normalization at batch b; the
bench's earlier reading) and ``m1_b ≥ none_64 + ½ (BN_64 − none_64)`` (both ends at batch 64).

    python bench/normalization.py [--quick] [--seeds 5] [--jobs 2] [--folds 3] [--small]
                                  [--where pre|post] [--no-affine] [--project]
                                  [--batches 1,2,4,8,64] [--data-init off|on|tune]
                                  [--stable off|on|tune] [--first-seed 5 --tuning LOG]

Prints a table and a final JSON line. ``--tuning LOG`` takes the folds' validation figures from
an earlier run's output instead of training them again (the picks come out the same: the runs
are deterministic), so a confirmation on other seeds costs the final runs only; it refuses a run
made with other settings or lacking a grid point. A full run (700 tuning runs on 5 folds, 75
final runs) took 1,080 s with ``--jobs 2``; with ``--stable off`` (350 tuning runs) 518 s on a
shared 2-core machine; without the data-init axis (250 tuning runs)
it took 1,029 s under a heavier load (load average 4-6 from other work), and the earlier design
(120 tuning runs, 75 final) 436 s on a quiet one (same figures: same seed, same bits).
"""

import argparse
import json
import time

import slimgen  # noqa: E402,F401  (before NumPy: pins its kernels and one BLAS thread per job)

from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402

from slimgen.sw.compress.lagrangian_norm import (LagrangianNorm,  # noqa: E402
                                                 LagrangianNormConfig, constrained_layers,
                                                 data_init)
from slimgen.sw.data import Split, load_digits  # noqa: E402
from slimgen.sw.nn import (TrainConfig, build_model, cnn_spec, deep_cnn_spec,  # noqa: E402
                           evaluate, fold_channel_affine, insert_channel_affine, predict, train)
from slimgen.sw.nn.loss import log_softmax  # noqa: E402

BATCHES = (1, 2, 4, 8, 64)
VARIANTS = ("none", "batchnorm", "method1")
# epochs per batch size: a fixed short budget (small batches take many more steps per epoch)
EPOCHS = {"deep": {1: 2, 2: 2, 4: 3, 8: 4, 64: 6}, "small": {1: 2, 2: 2, 4: 3, 8: 4, 64: 15}}
LR_GRID = (1e-3, 3e-3, 1e-2)
# method 1 never came near at lr 1e-3 in the fold tuning (the worst lr at every batch size, with
# and without γ, β), so its grid leaves it out: 30 fewer tuning runs, the same picks
M1_LR_GRID = (3e-3, 1e-2)
LAMBDA_GRID = (0.003, 0.03)
# --momentum tune: method 1's ρ of the running estimates of μ and σ² (0: the batch's own)
M1_MOMENTUM_GRID = (0.0, 0.9)
DATA_INIT_N = 256  # training inputs seen by method 1's data-dependent init (--data-init)
# --stable: the global gradient norm clipped at 1 and the learning rate warmed up linearly over
# the first epoch (then the cosine schedule), for any variant
STABLE_CLIP, STABLE_WARMUP = 1.0, 1


def spec_for(model, variant):
    bn = variant == "batchnorm"
    return deep_cnn_spec(depth=8, width=16, batchnorm=bn) if model == "deep" else \
        cnn_spec(batchnorm=bn)


def relu_input_stats(model, x, batch):
    """|mean| and variance per channel at every ReLU input, over batches of ``batch`` test
    samples in inference mode; averaged over channels, batches and layers."""
    relus = [i for i, layer in enumerate(model.layers) if layer.kind == "relu"]
    means, variances = [], []
    for s in range(0, min(len(x), 64 * batch), batch):
        a = x[s:s + batch]
        for i, layer in enumerate(model.layers):
            if i in relus:
                axes = (0, 2, 3) if a.ndim == 4 else (0,)
                if a.size // a.shape[1] >= 2:
                    means.append(np.mean(np.abs(a.mean(axis=axes))))
                    variances.append(np.mean(a.var(axis=axes)))
            a = layer.forward(a)
    return float(np.mean(means)), float(np.mean(variances))


def fold(data, k):
    """The seed-0 split with validation fold ``k`` of the non-test part: training and validation
    samples pooled, cut (seeded) into disjoint folds the size of the validation split (144), fold
    k held out for validation and the rest (1,293) for training; the test part is never touched."""
    sp = data.split
    rest = np.concatenate([sp.train, sp.val])
    perm = np.random.default_rng(1000).permutation(np.sort(rest))
    n_val = len(sp.val)
    if not 0 <= k < len(perm) // n_val:
        raise ValueError(f"fold must be in 0..{len(perm) // n_val - 1}, not {k}")
    val = np.sort(perm[k * n_val:(k + 1) * n_val])
    return replace(data, split=Split(np.setdiff1d(rest, val), val, sp.test))


def log_loss(model, x, y):
    """Mean cross-entropy ``−(1/n) Σ_i log softmax(z_i)[y_i]`` of the model's logits on (x, y)."""
    logp = log_softmax(predict(model, x))  # (n, k)
    return float(-np.mean(logp[np.arange(len(y)), y]))


def run(job):
    """One training run. ``tune``: on validation fold ``seed`` (seed k on fold k), returning
    validation figures only; else on the seed-0 split, returning test figures too."""
    (model_name, variant, batch, seed, lr, lam, where, epochs, momentum, running, affine,
     project, tune, dinit, stable) = job
    data = load_digits(view="image", seed=0)
    if tune:
        data = fold(data, seed)
    model = build_model(spec_for(model_name, variant), np.random.default_rng(seed))
    regs = []
    if variant == "method1":
        regs = [LagrangianNorm(LagrangianNormConfig(where=where, lambda_init=lam,
                                                    momentum=momentum, running=running,
                                                    project=project))]
        if affine:  # γ, β after every constrained layer: the penalty acts on its output
            model = insert_channel_affine(model, constrained_layers(model, "pre"))
        if dinit:  # each constrained layer's output at mean 0, variance 1 on 256 training inputs
            data_init(model, data.part("train")[0][:DATA_INIT_N], where)
    t = time.perf_counter()
    steady = dict(grad_clip=STABLE_CLIP, warmup_epochs=STABLE_WARMUP) if stable else {}
    hist = train(model, data, TrainConfig(epochs=epochs, batch_size=batch, lr=lr,
                                          schedule="cosine", seed=seed, **steady),
                 progress=False, regularizers=regs)
    if variant == "method1" and affine:  # no layer of method 1 is left at inference
        model = fold_channel_affine(model)
    xv, yv = data.part("val")
    out = {"val": evaluate(model, xv, yv), "val_ce": log_loss(model, xv, yv)}
    if tune:  # validation only: the test part is not evaluated while choosing
        return {**out, "seconds": time.perf_counter() - t}
    xt, yt = data.part("test")
    mean, var = relu_input_stats(model, xt, batch)
    return {**out, "test": evaluate(model, xt, yt),
            "act_mean": mean, "act_var": var, "seconds": time.perf_counter() - t,
            # method 1: |μ| and σ² of its constrained activations over the last epoch's batches
            "train_mean": hist[-1].get("ln_abs_mean", float("nan")),
            "train_var": hist[-1].get("ln_var", float("nan"))}


def grid(variant, data_init="off", stable="off", momentum=0.0):
    """Grid points ``(lr, λ0, data init, stable, ρ)``; ``data_init`` "tune" makes method 1's
    data-dependent initialisation a grid axis, ``stable`` "tune" the gradient clipping with
    warm-up of every variant, ``momentum`` "tune" method 1's running estimates (ρ from
    ``M1_MOMENTUM_GRID``; a number fixes ρ); each off first, so a tie keeps it off. ρ is None
    for the variants without method 1."""
    axis = {"off": (False,), "on": (True,), "tune": (False, True)}
    if variant == "method1":
        rhos = M1_MOMENTUM_GRID if momentum == "tune" else (float(momentum),)
        return [(lr, lam, d, st, rho) for rho in rhos for st in axis[stable]
                for d in axis[data_init] for lr in M1_LR_GRID for lam in LAMBDA_GRID]
    return [(lr, None, False, st, None) for st in axis[stable] for lr in LR_GRID]


def momentum_arg(text):
    """``--momentum``: "tune" or a number ρ in [0, 1)."""
    if text == "tune":
        return text
    try:
        rho = float(text)
    except ValueError:
        rho = None
    if rho is None or not 0 <= rho < 1:
        raise argparse.ArgumentTypeError(f"must be 'tune' or a number in [0, 1), not {text!r}")
    return rho


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 epoch, 2 seeds, no tuning, batch 4, 64")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="the test runs use seeds first-seed .. first-seed+seeds-1 (a confirmation "
                         "on seeds no choice has seen; tuning is unchanged)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="also the small digits CNN")
    ap.add_argument("--folds", type=int, default=5,
                    help="validation folds 0..n-1 (seed k on fold k) whose mean validation "
                         "cross-entropy picks the grid point")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)),
                    help="batch sizes to run (the goals need 64 beside 1, 2, 4 or 8)")
    ap.add_argument("--where", default="pre", choices=("pre", "post"),
                    help="method 1 constrains the ReLU inputs (pre) or outputs (post)")
    ap.add_argument("--momentum", type=momentum_arg, default=0.0,
                    help="method 1: ρ of the running estimates of μ and σ² (0: the batch's "
                         "statistics), or 'tune': a grid axis over "
                         f"{', '.join(map(str, M1_MOMENTUM_GRID))} picked on validation")
    ap.add_argument("--running", default="both", choices=("both", "ascent"),
                    help="method 1 with --momentum: running estimates in the penalty and the "
                         "multipliers' ascent, or in the ascent only")
    ap.add_argument("--affine", action=argparse.BooleanOptionalAction, default=True,
                    help="method 1 with a per-channel γ, β after every constrained layer "
                         "(folded into it for inference); --no-affine: the plain penalty")
    ap.add_argument("--project", action="store_true",
                    help="method 1 projects the loss gradient onto the constraint surface")
    ap.add_argument("--tuning", metavar="LOG",
                    help="take the folds' validation figures from an earlier run's output (its "
                         "log or final JSON line, same settings) instead of training them again: "
                         "for a confirmation on other seeds")
    ap.add_argument("--stable", default="tune", choices=("off", "on", "tune"),
                    help="every variant trains with the gradient norm clipped at 1 and one epoch "
                         "of learning-rate warm-up: never, always, or as a grid axis picked on "
                         "validation")
    ap.add_argument("--data-init", default="tune", choices=("off", "on", "tune"),
                    help="method 1 starts from a data-dependent initialisation (data_init: each "
                         "constrained layer's output at mean 0, variance 1 on 256 training "
                         "inputs): never, always, or as a grid axis picked on validation")
    a = ap.parse_args(argv)
    models = ["deep"] + (["small"] if a.small else [])
    batches = (4, 64) if a.quick else tuple(int(b) for b in a.batches.split(","))
    if not 1 <= a.folds <= 9:
        ap.error(f"--folds must be in 1..9, not {a.folds}")
    if any(b not in BATCHES for b in batches):
        ap.error(f"batch sizes must be among {BATCHES}, not {a.batches}")
    if a.first_seed < 0:
        ap.error(f"--first-seed must be non-negative, not {a.first_seed}")
    seeds = range(a.first_seed, a.first_seed + (2 if a.quick else a.seeds))
    settings = {"where": a.where, "affine": a.affine, "project": a.project,
                "momentum": a.momentum, "running": a.running}
    t0 = time.perf_counter()

    def pmap(jobs):
        if a.jobs > 1:
            from multiprocessing import Pool
            with Pool(a.jobs) as pool:
                return pool.map(run, jobs, chunksize=1)
        return [run(j) for j in jobs]

    def epochs(m, b):
        return 1 if a.quick else EPOCHS[m][b]

    # 1. tuning on the validation folds (the test part untouched): lowest mean cross-entropy
    cells = [(m, v, b) for m in models for b in batches for v in VARIANTS]
    picks, tuning = {}, []
    if a.quick:
        picks = {c: (LR_GRID[0], LAMBDA_GRID[0] if c[1] == "method1" else None, None,
                     a.data_init == "on" and c[1] == "method1", a.stable == "on",
                     (0.0 if a.momentum == "tune" else a.momentum) if c[1] == "method1"
                     else None)
                 for c in cells}
    else:
        points = [(m, v, b, lr, lam, d, st, rho) for (m, v, b) in cells
                  for lr, lam, d, st, rho in grid(v, a.data_init, a.stable, a.momentum)]
        if a.tuning:  # the folds' figures of an earlier run with the same settings
            try:
                results = reuse_tuning(a.tuning, points, settings, a.folds)
            except (OSError, ValueError) as e:
                ap.error(f"--tuning {a.tuning}: {e}")
        else:
            tune_jobs = [(m, v, b, k, lr, lam, a.where, epochs(m, b), rho or 0.0, a.running,
                          a.affine, a.project, True, d, st)
                         for (m, v, b, lr, lam, d, st, rho) in points for k in range(a.folds)]
            results = pmap(tune_jobs)
        print(f"tuning (validation cross-entropy and accuracy %, mean of folds "
              f"0..{a.folds - 1}; the lowest cross-entropy is picked"
              f"{f'; from {a.tuning}' if a.tuning else ''}):")
        for k, (m, v, b, lr, lam, d, st, rho) in enumerate(points):
            rs = results[k * a.folds:(k + 1) * a.folds]
            ce = float(np.mean([r["val_ce"] for r in rs]))
            val = float(np.mean([r["val"] for r in rs]))
            print(f"  {m} batch {b:2d} {v:9} lr {lr:g}{'' if lam is None else f' λ0 {lam:g}'}"
                  f"{' data init' if d else ''}{' stable' if st else ''}"
                  f"{f' ρ {rho:g}' if rho else ''}: val ce {ce:.4f} acc {100 * val:.2f}")
            tuning.append({"model": m, "variant": v, "batch": b, "lr": lr, "lambda0": lam,
                           "data_init": d, "stable": st, "momentum": rho,
                           "val_ce": ce, "val": val, "val_ces": [r["val_ce"] for r in rs],
                           "vals": [r["val"] for r in rs]})
            if (m, v, b) not in picks or ce < picks[(m, v, b)][2]:
                picks[(m, v, b)] = (lr, lam, ce, d, st, rho)
    # 2. final runs with the picks
    final_jobs = [(m, v, b, s, picks[(m, v, b)][0], picks[(m, v, b)][1], a.where, epochs(m, b),
                   picks[(m, v, b)][5] or 0.0, a.running, a.affine, a.project, False,
                   *picks[(m, v, b)][3:5])
                  for (m, v, b) in cells for s in seeds]
    results = pmap(final_jobs)
    table = {}
    for job, r in zip(final_jobs, results):
        table.setdefault(job[:3], []).append(r)
    rows = []
    for m in models:
        print(f"\n{m} CNN ({'8 conv layers' if m == 'deep' else 'conv 8, conv 16, pool'}), "
              f"method 1 on ReLU {'inputs' if a.where == 'pre' else 'outputs'}"
              f"{', with γ, β after each conv (folded)' if a.affine else ''}"
              f"{', projected loss gradient' if a.project else ''}"
              f"{'' if a.data_init == 'off' else f', data-dependent init {a.data_init}'}"
              f"{'' if a.momentum == 0 else f', running estimates ρ {a.momentum}'}")
        print(f"{'batch':>5} {'epochs':>6} {'variant':10} {'lr':>7} {'λ0':>6}   {'test %':>14} "
              f"{'val ce':>6} "
              f"{'act. |mean|':>11} {'act. var':>9} {'train |μ|':>9} {'train σ²':>8}")
        for b in batches:
            for v in VARIANTS:
                rs = table[(m, v, b)]
                test = np.array([r["test"] for r in rs]) * 100
                row = {"model": m, "batch": b, "variant": v, "epochs": epochs(m, b),
                       "lr": picks[(m, v, b)][0], "lambda0": picks[(m, v, b)][1],
                       "data_init": picks[(m, v, b)][3], "stable": picks[(m, v, b)][4],
                       "momentum": picks[(m, v, b)][5],
                       "test_mean": test.mean(), "test_std": test.std(), "tests": test.tolist(),
                       "val_ce": float(np.mean([r["val_ce"] for r in rs])),
                       "act_abs_mean": float(np.mean([r["act_mean"] for r in rs])),
                       "act_var": float(np.mean([r["act_var"] for r in rs])),
                       "train_abs_mean": float(np.mean([r["train_mean"] for r in rs])),
                       "train_var": float(np.mean([r["train_var"] for r in rs]))}
                rows.append(row)
                lam = f"{row['lambda0']:6.3f}" if row["lambda0"] is not None else f"{'-':>6}"
                lam += (("*" if row["data_init"] else " ") + ("s" if row["stable"] else " ")
                        + ("r" if row["momentum"] else " "))
                print(f"{b:5d} {row['epochs']:6d} {v:10} {row['lr']:7.0e} {lam} "
                      f"{row['test_mean']:6.2f} ± {row['test_std']:5.2f} {row['val_ce']:6.3f} "
                      f"{row['act_abs_mean']:11.3f} {row['act_var']:9.3f} "
                      f"{row['train_abs_mean']:9.3f} {row['train_var']:8.3f}")
    goals = check_goals(rows, batches)
    for g in goals:
        print(f"goal: {g['goal']}: {'met' if g['met'] else 'MISSED'} ({g['detail']})")
    seconds = time.perf_counter() - t0
    print(f"total {seconds:.0f} s")
    print(json.dumps({"bench": "normalization", "quick": a.quick, "seeds": list(seeds),
                      **settings, "data_init": a.data_init, "stable": a.stable,
                      "folds": a.folds, "seconds": seconds, "tuning": tuning, "rows": rows,
                      "goals": goals}))


def reuse_tuning(path, points, settings, folds):
    """The per-fold validation figures of ``points`` from an earlier run's output (``path``:
    its log or its final JSON line), in the order of the tuning jobs: a list of
    ``{"val_ce", "val"}``, ``folds`` per point. Raises ``ValueError`` when the earlier run
    used other settings (``settings``: where, affine, project, momentum, running; or fewer
    folds) or lacks a point."""
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.startswith("{")]
    if not lines:
        raise ValueError("holds no JSON line of bench/normalization.py")
    old = json.loads(lines[-1])
    if old.get("bench") != "normalization" or "tuning" not in old:
        raise ValueError("its last JSON line is not bench/normalization.py's")
    # outputs older than the momentum and running fields were made with their defaults
    old = {"momentum": 0.0, "running": "both", **old}
    differ = [f"{k} {old.get(k)!r} (now {v!r})" for k, v in settings.items() if old.get(k) != v]
    if differ:
        raise ValueError(f"was tuned with other settings: {', '.join(differ)}")
    if old["folds"] < folds:
        raise ValueError(f"has {old['folds']} folds, fewer than the {folds} asked for")
    # entries older than the stable and momentum axes ran without clipping, and method 1's
    # with the run's one ρ
    table = {(t["model"], t["variant"], t["batch"], t["lr"], t["lambda0"], t["data_init"],
              t.get("stable", False),
              t.get("momentum", old["momentum"] if t["variant"] == "method1" else None)): t
             for t in old["tuning"]}
    results = []
    for point in points:
        if point not in table:
            m, v, b, lr, lam, d, st, rho = point
            raise ValueError(f"lacks the grid point {m} batch {b} {v} lr {lr:g}"
                             f"{'' if lam is None else f' λ0 {lam:g}'}"
                             f"{' data init' if d else ''}{' stable' if st else ''}"
                             f"{f' ρ {rho:g}' if rho else ''}")
        t = table[point]
        results += [{"val_ce": c, "val": v} for c, v in zip(t["val_ces"][:folds],
                                                            t["vals"][:folds])]
    return results


def check_goals(rows, batches):
    """The issue's goals on the deep CNN, as dicts (``goal``, ``met``, ``detail``, figures).

    Batch 1 and 2: method 1 beats BatchNorm, and "closes at least half of the gap between no
    normalization and BatchNorm at batch 64". Three readings of the second part are computed and
    printed; the bench judges by the first (the gap measured at the batch in question, from no
    normalization there to BatchNorm at batch 64, the plain reading of the sentence):

    - ``at_batch``: ``m1_b ≥ none_b + ½ (BN_64 − none_b)``;
    - ``relative_64``: ``(m1_b − none_b) / (BN_64 − none_64) ≥ ½`` (the batch-64 gap's size,
      closed from no normalization at batch b);
    - ``midpoint_64``: ``m1_b ≥ none_64 + ½ (BN_64 − none_64)`` (both ends at batch 64).

    Batch 4 and 8: method 1's mean is at least BatchNorm's minus the larger of the two standard
    deviations over the seeds.
    """
    r = {(x["batch"], x["variant"]): x["test_mean"] for x in rows if x["model"] == "deep"}
    sd = {(x["batch"], x["variant"]): x["test_std"] for x in rows if x["model"] == "deep"}
    goals = []
    if 64 not in batches:
        return goals
    bn64, no64 = r[(64, "batchnorm")], r[(64, "none")]
    for b in (1, 2):
        if b not in batches:
            continue
        m1, bn, no = (r[(b, v)] for v in ("method1", "batchnorm", "none"))
        readings = {
            "at_batch": {"met": bool(m1 >= no + 0.5 * (bn64 - no)),
                         "threshold": no + 0.5 * (bn64 - no),
                         "closed": (m1 - no) / (bn64 - no) if bn64 != no else float("nan")},
            "relative_64": {"met": bool(m1 - no >= 0.5 * (bn64 - no64)),
                            "threshold": no + 0.5 * (bn64 - no64),
                            "closed": (m1 - no) / (bn64 - no64) if bn64 != no64
                            else float("nan")},
            "midpoint_64": {"met": bool(m1 >= no64 + 0.5 * (bn64 - no64)),
                            "threshold": no64 + 0.5 * (bn64 - no64),
                            "closed": (m1 - no64) / (bn64 - no64) if bn64 != no64
                            else float("nan")},
        }
        goals.append({"goal": f"batch {b}: method 1 beats BatchNorm", "met": bool(m1 > bn),
                      "detail": f"method 1 {m1:.2f}, BatchNorm {bn:.2f}"})
        detail = "; ".join(f"{name} {'met' if x['met'] else 'missed'} (≥ {x['threshold']:.2f}, "
                           f"closes {x['closed']:.2f})" for name, x in readings.items())
        goals.append({"goal": f"batch {b}: method 1 closes ≥ half the gap from no "
                              f"normalization to BatchNorm at batch 64 (judged: at_batch)",
                      "met": readings["at_batch"]["met"], "readings": readings,
                      "detail": f"method 1 {m1:.2f}, none {no:.2f} (batch 64: none {no64:.2f}, "
                                f"BatchNorm {bn64:.2f}); {detail}"})
    for b in (4, 8):
        if b in batches:
            m1, bn = r[(b, "method1")], r[(b, "batchnorm")]
            spread = max(sd[(b, "method1")], sd[(b, "batchnorm")])
            goals.append({"goal": f"batch {b}: method 1 matches BatchNorm within the spread",
                          "met": bool(m1 >= bn - spread),
                          "detail": f"method 1 {m1:.2f}, BatchNorm {bn:.2f}, spread {spread:.2f}"})
    return goals


if __name__ == "__main__":
    main()
