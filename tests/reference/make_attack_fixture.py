#!/usr/bin/python3
"""Independent reference for the PGD arithmetic (runner/pgd.h, runner/pgd.c),
written to tests/fixtures/attack_ref.h5 for tests/test_attack.c.

Two parts:

1. PGD trajectories. The model is test_attack.c's cnn_model, with the same
   node names: conv1(3->4, 3x3, pad 1) relu1 pool1(max 2) features(GAP)
   dropout(0.5, eval mode: identity) fc(4->10), on one 3x8x8 image (a
   coloured textured background, a white stroke in [0.96, 1] where the clamp
   to [0, 1] binds, and three pixels at exactly 0). PyTorch's default float32
   initialisation under a fixed seed, then fc (weight and bias) scaled by 10
   so that the probabilities move visibly. Each step, in pgd.h's order: the
   gradient step (L-inf: step * sign(g); L2: step * g / |g|_2), the
   projection onto the epsilon-ball around the source, the clamp to [0, 1];
   g is the gradient with respect to x of the objective (pgd.h: CE(label)
   untargeted, -CE(target) targeted; the margin and DLR losses), zeroed
   outside the mask when there is one. No random start, one restart. Cases:
     linf_targeted                eps 0.1, step 0.01, CE, target 3
     linf_untargeted              eps 0.1, step 0.01, CE, away from the label
     l2_targeted                  eps 1,   step 0.1,  CE, target 3
     linf_targeted_dlr            eps 0.1, step 0.01, DLR, target 3
     l2_untargeted_margin_masked  eps 1,   step 0.1,  margin, away from the
                                  label, only background pixels (every
                                  channel of a pixel with min(R,G,B) < 0.95)
   all 50 steps. Everything runs in float64 from the float32 weights, image,
   epsilon and step (what the fixture stores), so the reference is exact to
   the float32 rounding of the C side's arithmetic.

   How the image was chosen. The C side computes g in float32; where a
   component of g is near zero its sign (L-inf) can differ from float64's and
   the trajectories part by 2 * step in that pixel; a ReLU input near zero,
   a max-pool window with two nearly equal entries, or (margin, DLR) two
   nearly equal logits where the objective picks a runner-up or a place in
   the order do the same to g itself. For each candidate image seed (0, 1,
   2, ...) the script runs every case and records, at every iteration whose
   g is used: the smallest |g_i| / max|g| over the nonzero components (L-inf
   only; exact zeros are structural, a dead path or the mask, and are zero in
   float32 too), the smallest |ReLU input| / max|ReLU input|, the smallest
   gap between the two largest entries of a max-pool window whose maximum is
   positive, over the largest pooled value, and the smallest gap between the
   logits whose order the objective uses (the two largest z_j, j != y or t;
   DLR also the top five), over max z - min z. It also reruns each case in
   float32 PyTorch and takes the largest |x32 - x64|. It takes the first seed
   where every margin is >= MARGIN (1e-5) and the float32 rerun stays within
   1e-6 of the reference (the C test's tolerance is 1e-5): seed 1 (seed 0
   fails: a sign margin of 8e-6 in linf_targeted, pool gaps of 3e-6). The
   margins are printed and stored; the C side measured ~1e-7 from the
   reference. A targeted attack that drives p(target) near 1 is also
   ill-conditioned (p - 1 loses its digits in float32), which is why the
   epsilons keep p(target) well below 1 (0.18 -> 0.21).

2. Objective values and gradients (rn_pgd_objective): rows of float32 logits
   (k = 10), for each loss (CE, MARGIN, DLR) targeted and untargeted, the
   value and d value / d z by torch autograd in float64, with pgd.h's tie
   rule (a max or the sort picks the lowest class index among equals: the
   indices are chosen with np.argmax / a stable sort, then autograd goes
   through the chosen entries). Four rows have exact ties: a tie for the
   runner-up (the max over j != y or j != t), a tie between pi2 and pi3 (the
   DLR denominator's z_pi3 is the higher index), and a tie for the top.

Fixture layout:
  /x (1,3,8,8) f32            the source image
  /label (1) i32              its label (the clean model's argmax)
  /weights/<node>.<param> f32 PyTorch state_dict layout (OIHW, [out,in])
  /cases/<case>/eps (1) f32, step (1) f32, steps (1) i32, l2 (1) i32,
                target (1) i32 (-1: untargeted), loss (1) i32 (enum
                rn_pgd_loss: 0 CE, 1 MARGIN, 2 DLR)
  /cases/<case>/mask (8,8) u8         1 where the perturbation may go (only
                                      in the masked case)
  /cases/<case>/iters (T) i32         iterations at which x is stored
  /cases/<case>/x_iter (T,3,8,8) f64  x after each of those iterations
  /cases/<case>/x_adv (1,3,8,8) f64   x after `steps` iterations
  /cases/<case>/probs (1,10) f64      softmax of the logits at x_adv
  /cases/<case>/trace (steps+1,10) f64  the probabilities before every step
                                      and after the last (trace_stride 1)
  /cases/<case>/margins (5) f64       sign, ReLU, pool, objective margins
                                      and the float32 rerun's deviation
  /objective/logits (R,10) f32, label (R) i32, target (R) i32 (-1:
    untargeted), loss (R) i32 (enum rn_pgd_loss: 0 CE, 1 MARGIN, 2 DLR),
    value (R) f64, dz (R,10) f64

usage: /usr/bin/python3 tests/reference/make_attack_fixture.py [OUT.h5]
(Debian's python3-torch and python3-h5py; a pyenv python on PATH lacks them.)
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SCALE = 10.0  # fc is scaled so that the attacks move the probabilities visibly
MARGIN = 1e-5
F32_AGREE = 1e-6
STEPS = 50
ITERS = [1, 2, 5, 10, 20, 35]
TARGET = 3
LOSSES = {"ce": 0, "margin": 1, "dlr": 2}  # enum rn_pgd_loss
# name, l2, eps, step, targeted, loss, masked
CASES = [("linf_targeted", 0, 0.1, 0.01, True, "ce", False),
         ("linf_untargeted", 0, 0.1, 0.01, False, "ce", False),
         ("l2_targeted", 1, 1.0, 0.1, True, "ce", False),
         ("linf_targeted_dlr", 0, 0.1, 0.01, True, "dlr", False),
         ("l2_untargeted_margin_masked", 1, 1.0, 0.1, False, "margin", True)]


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 10)

    def parts(self, x):
        """logits, the ReLU inputs, the ReLU outputs (for the margins)."""
        a = self.conv1(x)
        r = F.relu(a)
        z = self.fc(self.dropout(F.max_pool2d(r, 2).mean(dim=(2, 3))))
        return z, a, r

    def forward(self, x):
        return self.parts(x)[0]


def image(rng):
    colour = rng.uniform(0.15, 0.9, size=3)
    noise = rng.uniform(0.5, 1.0, size=(8, 8))
    x = (colour[:, None, None] * noise[None]).astype(np.float32)
    stroke = np.zeros((8, 8), bool)
    stroke[rng.integers(1, 7), 1:7] = True
    stroke[1:7, rng.integers(1, 7)] = True
    x[:, stroke] = rng.uniform(0.96, 1.0, size=(3, int(stroke.sum())))
    for c, p in enumerate(rng.choice(64, size=3, replace=False)):
        x[c, p // 8, p % 8] = 0.0
    return x[None]


def margins(model, x, g):
    """Smallest relative sign, ReLU and pool margins at x (see the docstring)."""
    with torch.no_grad():
        _, a, r = model.parts(x)
    gabs = g.abs().flatten()
    nz = gabs[gabs > 0]
    sign = (nz.min() / gabs.max()).item() if nz.numel() else 1.0
    relu = (a.abs().min() / a.abs().max()).item()
    n, c, h, w = r.shape
    win = r.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(-1, 4)
    top = win.sort(dim=1, descending=True).values
    live = top[:, 0] > 0
    pool = ((top[live, 0] - top[live, 1]).min() / top[:, 0].max()).item() if live.any() else 1.0
    return sign, relu, pool


def objective_value(loss, z, y, t):
    """pgd.h's objective at the logits z (1-D, float64, in the graph) and the
    smallest gap, over the largest spread of z, between logits whose order
    picks the entries it uses (a runner-up or a place among the top five):
    where a gap closes, float32 may pick another index. t < 0: untargeted."""
    zn = z.detach().numpy()
    pi = np.argsort(-zn, kind="stable")  # largest first, ties to the lowest index
    spread = zn.max() - zn.min()
    if loss == 0:
        ce = torch.logsumexp(z, 0) - z[t if t >= 0 else y]
        return (-ce if t >= 0 else ce), 1.0
    c = t if t >= 0 else y
    others = np.sort(np.delete(zn, c))[::-1]
    gap = (others[0] - others[1]) / spread
    if loss == 1:
        v = z[t] - z[runner_up(zn, t)] if t >= 0 else z[runner_up(zn, y)] - z[y]
        return v, gap
    top = np.sort(zn)[::-1][:5]
    gap = min(gap, (np.diff(-top)).min() / spread)
    if t >= 0:
        v = (z[t] - z[y]) / (z[pi[0]] - (z[pi[2]] + z[pi[3]]) / 2 + 1e-12)
    else:
        v = (z[runner_up(zn, y)] - z[y]) / (z[pi[0]] - z[pi[2]] + 1e-12)
    return v, gap


def pgd(model, src, y, t, l2, eps, step, steps, loss=0, mask=None, record=(), check=False):
    """pgd.h's attack on one image from src (no random start). Returns x
    after `steps`, x after each iteration in record, the probabilities
    before every step and after the last (steps + 1, 10), and (check) the
    smallest sign, ReLU, pool and objective margins along the way."""
    x = src.clone()
    kept, trace, worst = [], [], [1.0] * 4
    for it in range(1, steps + 2):
        x.requires_grad_(True)
        z = model(x)
        trace.append(F.softmax(z.detach(), dim=1))
        if it > steps:  # the final forward: only its probabilities (continuous)
            break
        obj, gap = objective_value(loss, z[0], y, t)
        g, = torch.autograd.grad(obj, x)
        x = x.detach()
        if mask is not None:
            g = g * mask  # before the step and so before the projection
        if check:
            sign, relu, pool = margins(model, x, g)
            m = (1.0 if l2 else sign, relu, pool, gap)  # L2 does not take the sign
            worst = [min(a, b) for a, b in zip(worst, m)]
        if l2:
            x = x + step * g / g.norm()
            d = x - src
            nd = d.norm()
            if nd > eps:
                x = src + d * (eps / nd)
        else:
            x = x + step * torch.sign(g)
            x = torch.minimum(torch.maximum(x, src - eps), src + eps)
        x = x.clamp(0, 1)
        if it in record:
            kept.append(x.clone())
    return x.detach(), kept, torch.cat(trace), worst


def f32(v):
    return float(np.float32(v))


def background(x32):
    """(8, 8) 1 where min(R, G, B) < 0.95 (not the stroke), as u8."""
    return (x32[0].min(axis=0) < 0.95).astype(np.uint8)


def trajectories(state, x32):
    m64 = Small().double()
    m64.load_state_dict({k: v.double() for k, v in state.items()})
    m64.eval()
    m32 = Small()
    m32.load_state_dict(state)
    m32.eval()
    x = torch.from_numpy(x32).double()
    with torch.no_grad():
        label = int(m64(x).argmax())
    mask8 = background(x32)
    out = {}
    for name, l2, eps, step, targeted, loss, masked in CASES:
        t = TARGET if targeted else -1
        eps, step = f32(eps), f32(step)
        mk = torch.from_numpy(mask8).double()[None, None] if masked else None
        xa, kept, trace, worst = pgd(m64, x, label, t, l2, eps, step, STEPS, LOSSES[loss], mk,
                                     ITERS, check=True)
        xa32 = pgd(m32, x.float(), label, t, l2, np.float32(eps), np.float32(step), STEPS,
                   LOSSES[loss], None if mk is None else mk.float())[0]
        dev = (xa32.double() - xa).abs().max().item()
        out[name] = dict(l2=l2, eps=eps, step=step, target=t, loss=LOSSES[loss],
                         mask=mask8 if masked else None, x_adv=xa, x_iter=torch.cat(kept),
                         trace=trace, probs=trace[-1:], margins=worst + [dev])
    return label, out


def ok(out):
    return all(min(c["margins"][:4]) >= MARGIN and c["margins"][4] <= F32_AGREE
               for c in out.values())


# ---- objectives -----------------------------------------------------------


def runner_up(z, skip):
    """argmax over j != skip, the lowest index among equals."""
    v = z.copy()
    v[skip] = -np.inf
    return int(np.argmax(v))


def objective(loss, z32, y, t):
    z = torch.tensor(z32, dtype=torch.float64, requires_grad=True)
    v, _ = objective_value(loss, z, y, t)
    dz, = torch.autograd.grad(v, z)
    return v.item(), dz.numpy()


def objective_rows(rng):
    rows = []
    for loss in range(3):
        for targeted in (0, 1):
            for _ in range(3):
                z = rng.normal(0, 2, size=10).astype(np.float32)
                y = int(rng.integers(10))
                t = int((y + rng.integers(1, 10)) % 10) if targeted else -1
                rows.append((loss, z, y, t))
    # exact ties, resolved to the lowest index
    z = rng.normal(0, 1, size=10).astype(np.float32)
    z[[2, 6]] = 3.0  # untargeted margin, y = 0: the runner-up is 2 (tied with 6)
    rows.append((1, z.copy(), 0, -1))
    z[4] = 5.0       # targeted margin at 4: the runner-up is 2 again
    rows.append((1, z.copy(), 0, 4))
    z = rng.normal(0, 1, size=10).astype(np.float32)
    z[[1, 5, 8]] = [4.0, 2.5, 2.5]  # DLR untargeted, y = 5: pi = 1, 5, 8 (pi3 = 8)
    rows.append((2, z.copy(), 5, -1))
    z = rng.normal(0, 1, size=10).astype(np.float32)
    z[[3, 7]] = 4.0  # a tie for the top: untargeted DLR with y = 7, runner-up 3
    rows.append((2, z.copy(), 7, -1))
    for loss, z, y, t in rows[-4:]:  # the ties are where the comments say
        pi = np.argsort(-z, kind="stable")
        assert (loss, runner_up(z, y if t < 0 else t)) in ((1, 2), (2, 1), (2, 3))
        assert loss == 1 or z[pi[0]] == z[pi[1]] or (pi[1], pi[2]) == (5, 8)
    return rows


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "attack_ref.h5")
    torch.set_num_threads(1)
    torch.manual_seed(20261203)
    model = Small().eval()
    with torch.no_grad():
        model.fc.weight.mul_(SCALE)
        model.fc.bias.mul_(SCALE)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for seed in range(100):
        x32 = image(np.random.default_rng(seed))
        label, out = trajectories(state, x32)
        print("image seed %d:" % seed)
        for k, c in out.items():
            print("  %-28s sign %.2g relu %.2g pool %.2g objective %.2g f32 %.2g"
                  % ((k,) + tuple(c["margins"])))
        if ok(out):
            break
    else:
        sys.exit("no image seed in 0..99 gives margins >= %g" % MARGIN)
    if label == TARGET:
        sys.exit("the clean label is the target: choose another TARGET")
    with torch.no_grad():
        p0 = F.softmax(model(torch.from_numpy(x32)).double(), dim=1)[0]
    print("%-28s p(label %d) %.4f p(target) %.4f" % ("clean", label, p0[label], p0[TARGET]))

    with h5py.File(out_path, "w") as f:
        f["x"] = x32
        f["label"] = np.array([label], np.int32)
        for k, v in state.items():
            f["weights/" + k] = v.numpy().astype(np.float32)
        for name, c in out.items():
            g = "cases/%s/" % name
            f[g + "eps"] = np.array([c["eps"]], np.float32)
            f[g + "step"] = np.array([c["step"]], np.float32)
            f[g + "steps"] = np.array([STEPS], np.int32)
            f[g + "l2"] = np.array([c["l2"]], np.int32)
            f[g + "target"] = np.array([c["target"]], np.int32)
            f[g + "loss"] = np.array([c["loss"]], np.int32)
            if c["mask"] is not None:
                f[g + "mask"] = c["mask"]
            f[g + "trace"] = c["trace"].numpy()
            f[g + "iters"] = np.array(ITERS, np.int32)
            f[g + "x_iter"] = c["x_iter"].numpy()
            f[g + "x_adv"] = c["x_adv"].numpy()
            f[g + "probs"] = c["probs"].numpy()
            f[g + "margins"] = np.array(c["margins"])
            p = c["probs"][0]
            print("%-28s p(label %d) %.4f p(target) %.4f |delta|_inf %.4f" % (
                name, label, p[label], p[TARGET],
                (c["x_adv"] - torch.from_numpy(x32).double()).abs().max()))
        rows = objective_rows(np.random.default_rng(11))
        res = [objective(loss, z, y, t) for loss, z, y, t in rows]
        f["objective/logits"] = np.stack([r[1] for r in rows])
        f["objective/label"] = np.array([r[2] for r in rows], np.int32)
        f["objective/target"] = np.array([r[3] for r in rows], np.int32)
        f["objective/loss"] = np.array([r[0] for r in rows], np.int32)
        f["objective/value"] = np.array([v for v, _ in res])
        f["objective/dz"] = np.stack([d for _, d in res])
    print("wrote", os.path.normpath(out_path))


if __name__ == "__main__":
    main()
