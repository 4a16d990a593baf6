#!/usr/bin/python3
"""Independent reference for the sparse autoencoder's training recipe
(runner/sae.h), written to tests/fixtures/sae_ref.h5 for tests/test_sae.c.

The recipe, in PyTorch (autograd, torch.optim.Adam), from initial weights
stored in the file (the C side starts rn_sae_train_from from the very same
float32 values):

  xin = x - mu - b_d;  p = xin W_e^T + b_e
  relu: c = ReLU(p);   topk: c = ReLU of the k largest p (torch.topk), 0 else
  x^ = c W_d^T + b_d + mu
  loss = mean_b ||x^ - x||^2 + l1 * mean_b sum_j w_j |c_j|,
         w_j = ||W_d[:, j]|| (through autograd) when decoder_norm, else 1
  after backward: g_j -= (g_j . w_j) / (w_j . w_j) w_j on each column of
  W_d's gradient; Adam.step(); each column of W_d divided by its norm.

Each epoch visits the rows in the order of the runner's shuffle: PCG32
(runner/rng.c, re-implemented below) seeded with (seed, RN_STREAM_SAE = 9,
RN_SAE_ITEM_SHUFFLE + epoch = 2 + epoch), a Fisher-Yates shuffle of 0..n-1
(rn_rng_shuffle, with Lemire's unbiased bounded integers); batches of
`batch` rows, the last one smaller. Per epoch the metrics of sae.h measured
on the batches before their step: loss, mse, fve (around the mean of all of
x), l0, the dead fraction at the end of the epoch (a feature is dead when
the samples seen since the end of the last batch where it fired reach the
window; at the start every feature has a fresh window), the dense fraction
(density over the epoch > 0.1) and, for the last epoch, each feature's
firing fraction.

Everything runs in float64 from the float32 data and weights (the Adam
hyper-parameters are the float32 values the C side uses), so the reference
is exact to the C side's float32 rounding; the script also reruns each case
in float32 PyTorch and prints the largest weight difference (the floor a
float32 implementation can reach; the C test's tolerance is 1e-5).

Cases (x: 100 x 8, non-negative, ReLU of Gaussians; Adam lr 0.01 so that
three epochs move the weights visibly):
  relu             m 16, l1 0.05, batch 32 (3 x 32 + 4), 3 epochs, seed 3,
                   dead_window 40; three features start with b_e = -5 (dead)
  relu_dn_centre   m 16, l1 0.05 weighted by decoder norms, centred (mu =
                   the mean, b_d = 0), batch 25, 3 epochs, seed 4
  topk             m 16, k 3, l1 0, batch 32, 3 epochs, seed 5
Also /geomedian: the geometric median of x by Weiszfeld's iteration in
float64 from the mean (rows at the estimate left out), to 1e-12.

usage: /usr/bin/python3 tests/reference/make_sae_fixture.py [OUT]
       (default tests/fixtures/sae_ref.h5)
"""
import sys

import h5py
import numpy as np
import torch

M64 = (1 << 64) - 1
RN_STREAM_SAE = 9
RN_SAE_ITEM_SHUFFLE = 2


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


class Rng:
    """runner/rng.c: PCG32 seeded through splitmix64 from (seed, stream, item)."""

    def __init__(self, seed, stream, item):
        x = seed & M64
        x, a = splitmix64(x)
        x ^= (stream * 0xD1B54A32D192ED03) & M64
        x, b = splitmix64(x)
        x ^= (item * 0x8CB92BA72F3D8DD7) & M64
        x, c = splitmix64(x)
        self.state = 0
        self.inc = (((b ^ c) << 1) | 1) & M64
        self.u32()
        self.state = (self.state + (a ^ c)) & M64
        self.u32()

    def u32(self):
        old = self.state
        self.state = (old * 6364136223846793005 + self.inc) & M64
        xs = ((((old >> 18) ^ old) >> 27)) & 0xFFFFFFFF
        rot = old >> 59
        return ((xs >> rot) | (xs << ((-rot) & 31))) & 0xFFFFFFFF

    def below(self, n):
        m = self.u32() * n
        low = m & 0xFFFFFFFF
        if low < n:
            t = ((1 << 32) - n) % n
            while low < t:
                m = self.u32() * n
                low = m & 0xFFFFFFFF
        return m >> 32

    def shuffle(self, idx):
        for i in range(len(idx) - 1, 0, -1):
            j = self.below(i + 1)
            idx[i], idx[j] = idx[j], idx[i]


F32 = lambda v: float(np.float32(v))  # noqa: E731


def train(case, x32, init, dtype):
    x = torch.tensor(x32, dtype=dtype)
    n, d = x.shape
    p = {k: torch.tensor(v, dtype=dtype) for k, v in init.items()}
    w_enc, b_enc, w_dec, b_dec, mu = (p[k] for k in ("w_enc", "b_enc", "w_dec", "b_dec", "mu"))
    for t in (w_enc, b_enc, w_dec, b_dec):
        t.requires_grad_(True)
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=F32(case["lr"]),
                           betas=(F32(0.9), F32(0.999)), eps=F32(1e-8))
    m, l1, batch = case["m"], F32(case["l1"]), case["batch"]
    window = case["dead_window"] or n
    xd = x.double()
    total_var = float(((xd - xd.mean(0)) ** 2).sum())
    last_fired = np.zeros(m, dtype=np.int64)
    samples = 0
    metrics = {k: [] for k in ("loss", "mse", "fve", "l0", "dead", "dense")}
    density = None
    for epoch in range(case["epochs"]):
        perm = list(range(n))
        Rng(case["seed"], RN_STREAM_SAE, RN_SAE_ITEM_SHUFFLE + epoch).shuffle(perm)
        count = np.zeros(m, dtype=np.int64)
        s_err = s_l1 = s_nnz = 0.0
        for b0 in range(0, n, batch):
            xb = x[perm[b0:b0 + batch]]
            rows = xb.shape[0]
            pre = (xb - mu - b_dec) @ w_enc.T + b_enc
            if case["act"] == "topk":
                vals, idx = pre.topk(case["k"], dim=1)
                c = torch.zeros_like(pre).scatter(1, idx, torch.relu(vals))
            else:
                c = torch.relu(pre)
            xhat = c @ w_dec.T + b_dec + mu
            wn = w_dec.norm(dim=0) if case["decoder_norm"] else torch.ones(m, dtype=dtype)
            err = ((xhat - xb) ** 2).sum(1)
            l1t = (c.abs() * wn).sum(1)
            loss = err.mean() + l1 * l1t.mean()
            opt.zero_grad()
            loss.backward()
            with torch.no_grad():
                g, w = w_dec.grad, w_dec
                g -= (g * w).sum(0, keepdim=True) / (w * w).sum(0, keepdim=True) * w
            opt.step()
            with torch.no_grad():
                w_dec /= w_dec.norm(dim=0, keepdim=True)
            fired = (c > 0).detach().numpy()
            s_err += float(err.double().sum())
            s_l1 += float(l1t.double().sum())
            s_nnz += float(fired.sum())
            count += fired.sum(0)
            samples += rows
            last_fired[fired.any(0)] = samples
        metrics["loss"].append((s_err + l1 * s_l1) / n)
        metrics["mse"].append(s_err / (n * d))
        metrics["fve"].append(1 - s_err / total_var)
        metrics["l0"].append(s_nnz / n)
        metrics["dead"].append(float(np.mean(samples - last_fired >= window)))
        metrics["dense"].append(float(np.mean(count / n > F32(0.1))))
        density = count / n
    final = {"w_enc": w_enc, "b_enc": b_enc, "w_dec": w_dec, "b_dec": b_dec}
    return {k: v.detach().double().numpy() for k, v in final.items()}, metrics, density


def geometric_median(x):
    x = x.astype(np.float64)
    y = x.mean(0)
    for _ in range(10000):
        dist = np.sqrt(((x - y) ** 2).sum(1))
        keep = dist >= 1e-12
        wgt = 1 / dist[keep]
        ynew = (x[keep] * wgt[:, None]).sum(0) / wgt.sum()
        if np.linalg.norm(ynew - y) < 1e-12:
            return ynew
        y = ynew
    return y


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/sae_ref.h5"
    torch.manual_seed(0)
    rs = np.random.RandomState(12)
    n, d, m = 100, 8, 16
    x = np.maximum(0, rs.randn(n, d) * 0.8 + 0.5).astype(np.float32)
    cases = {
        "relu": dict(m=m, act="relu", k=0, l1=0.05, decoder_norm=0, centre=0, batch=32, epochs=3,
                     seed=3, dead_window=40, lr=0.01, killed=[2, 9, 13]),
        "relu_dn_centre": dict(m=m, act="relu", k=0, l1=0.05, decoder_norm=1, centre=1, batch=25,
                               epochs=3, seed=4, dead_window=0, lr=0.01, killed=[]),
        "topk": dict(m=m, act="topk", k=3, l1=0.0, decoder_norm=0, centre=0, batch=32, epochs=3,
                     seed=5, dead_window=0, lr=0.01, killed=[]),
    }
    with h5py.File(out, "w") as f:
        f["x"] = x
        f["geomedian"] = geometric_median(x)
        for name, case in cases.items():
            w_dec = rs.randn(d, m)
            w_dec /= np.linalg.norm(w_dec, axis=0, keepdims=True)
            w_enc = w_dec.T + 0.1 * rs.randn(m, d)
            b_enc = 0.05 * rs.randn(m)
            b_enc[case["killed"]] = -5
            mean = x.astype(np.float64).mean(0)
            mu = mean if case["centre"] else np.zeros(d)
            b_dec = np.zeros(d) if case["centre"] else mean
            init = {k: v.astype(np.float32) for k, v in dict(
                w_enc=w_enc, b_enc=b_enc, w_dec=w_dec, b_dec=b_dec, mu=mu).items()}
            final, metrics, density = train(case, x, init, torch.float64)
            final32, _, _ = train(case, x, init, torch.float32)
            worst = max(np.abs(final[k] - final32[k]).max() for k in final)
            print(f"{name}: float32 PyTorch vs float64 reference, largest weight difference "
                  f"{worst:.2e}; last epoch fve {metrics['fve'][-1]:.5f} l0 {metrics['l0'][-1]:.2f} "
                  f"dead {metrics['dead'][-1]:.4f}")
            g = f.create_group(f"cases/{name}")
            for key in ("m", "k", "decoder_norm", "centre", "batch", "epochs", "seed",
                        "dead_window"):
                g[key] = np.array([case[key]], dtype=np.int32)
            g["topk"] = np.array([case["act"] == "topk"], dtype=np.int32)
            g["l1"] = np.array([case["l1"]], dtype=np.float32)
            g["lr"] = np.array([case["lr"]], dtype=np.float32)
            for k, v in init.items():
                g[f"init/{k}"] = v
            for k, v in final.items():
                g[f"final/{k}"] = v
            for k, v in metrics.items():
                g[f"metrics/{k}"] = np.array(v, dtype=np.float64)
            g["density"] = density.astype(np.float64)
            g.attrs["float32_vs_float64"] = worst
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
