"""FST-D (Du et al., NeurIPS 2022, "learning from the future"): the EMA teacher's decays
while it also averages the student's virtual future weights.

In the authors' DAFormer variant (usr922/FST, `mmseg/models/uda/fst_d.py`) each iteration
t >= 1 takes K virtual optimiser steps on the current batch; before each virtual step and
once after the last one the teacher takes an EMA step towards the current (virtual) student,
so it has seen the student K steps ahead when it labels the batch for the real step. The
student's weights are then restored (not its optimiser state) and the real step runs without
a further teacher update. Pseudo-labels come from that teacher as in DAFormer: no new loss.

The decay follows DAFormer's min(1 - 1/(n+1), alpha_max), where n counts every student
optimiser step taken so far, virtual ones included (the code's `local_iter` advances once
per forward pass). This module holds that schedule; the look-ahead itself, which needs the
model and optimiser, is `omuda.engine.lookahead.look_ahead`.
"""

from __future__ import annotations

from omuda.adaptation.teacher import ema_alpha


def lookahead_ema_alphas(iteration: int, steps: int, alpha_max: float = 0.999) -> list[float]:
    """The K+1 EMA decays the teacher takes at real iteration `iteration` (0-based).

    Entry k < K is used just before virtual step k (the student then holds k virtual steps),
    entry K after the last virtual step. Iteration 0 takes no look-ahead (the authors' first
    iteration is a plain DAFormer step), so it returns []; so does steps = 0. With n counting
    every optimiser step before this one, entry k is min(1 - 1/(n + k + 1), alpha_max) with
    n = 1 + (steps + 1) * (iteration - 1).
    """
    if iteration <= 0 or steps <= 0:
        return []
    steps_before = 1 + (steps + 1) * (iteration - 1)
    return [ema_alpha(steps_before + k, alpha_max) for k in range(steps + 1)]
