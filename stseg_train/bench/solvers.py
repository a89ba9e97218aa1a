"""Benchmark the θ solvers (lstsq, IRLS, L-BFGS, the original's lbfgs-paper) on realistic synthetic batches.

Each sample is a flow window made of a few parametric segments (a background and ellipses,
each with its own random motion of the chosen model), plus Gaussian noise and gross outliers;
the probabilities are soft versions of the true segmentation (softmax of noisy logits), as a
partially trained network would give. Prints, per solver, the median time per batch and the
mean final L1 objective, also relative to L-BFGS (the original method).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ..motion import basis as make_basis
from ..motion import flow_from_theta
from ..solvers import (
    DEFAULT_IRLS_ITERS,
    DEFAULT_SOLVER,
    fit_theta,
    l1_objective,
)


def synthetic_batch(
    batch: int,
    n_labels: int,
    T: int,
    H: int,
    W: int,
    model: str,
    *,
    noise: float,
    outliers: float,
    softness: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns ``flow (B, 2, T, H, W)`` pixels, ``proba (B, L, T, H, W)``, ``basis (K, T, H, W)``.

    Segment 0 is the background; segments 1.. are ellipses drifting slowly over the frames.
    """
    g = generator
    A = make_basis(model, T, H, W)
    k = A.shape[0]
    # Coefficient scale per term: a few pixels of translation, smaller higher-order terms.
    scale = torch.full((k,), 1.0)
    scale[-1] = 4.0
    theta = (torch.rand(batch, n_labels, 2, k, generator=g) * 2 - 1) * scale
    seg_flows = flow_from_theta(theta, A)  # (B, L, 2, T, H, W)

    i = torch.linspace(-1, 1, H).view(1, H, 1)
    j = torch.linspace(-1, 1, W).view(1, 1, W)
    tt = torch.linspace(-1, 1, T).view(T, 1, 1)
    labels = torch.zeros(batch, T, H, W, dtype=torch.long)
    for b in range(batch):
        for lab in range(1, n_labels):
            c = (torch.rand(2, generator=g) * 1.4 - 0.7).tolist()
            r = (torch.rand(2, generator=g) * 0.35 + 0.15).tolist()
            drift = ((torch.rand(2, generator=g) - 0.5) * 0.1).tolist()
            di = (i - c[0] - drift[0] * tt) / r[0]
            dj = (j - c[1] - drift[1] * tt) / r[1]
            inside = di**2 + dj**2 < 1
            labels[b][inside] = lab
    onehot = torch.nn.functional.one_hot(labels, n_labels).permute(0, 4, 1, 2, 3).float()
    flow = (seg_flows * onehot.unsqueeze(2)).sum(dim=1)
    flow = flow + noise * torch.randn(flow.shape, generator=g)
    is_out = torch.rand(batch, 1, T, H, W, generator=g) < outliers
    flow = torch.where(is_out, flow + (torch.rand(flow.shape, generator=g) * 2 - 1) * 20, flow)

    logits = 3.0 * onehot + softness * torch.randn(onehot.shape, generator=g)
    proba = torch.softmax(logits, dim=1)
    return flow, proba, A


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--batch", type=int, default=10, help="samples per batch")
    ap.add_argument("--labels", type=int, default=4, help="segments L")
    ap.add_argument("--frames", type=int, default=3, help="frames T per window")
    ap.add_argument(
        "--size", type=int, nargs=2, default=[128, 224], metavar=("H", "W"), help="flow size"
    )
    ap.add_argument("--model", default="QuadraticFullPT", help="parametric motion model")
    ap.add_argument("--batches", type=int, default=3, help="timed batches per solver")
    ap.add_argument("--noise", type=float, default=0.3, help="Gaussian noise std, pixels")
    ap.add_argument("--outliers", type=float, default=0.05, help="fraction of outlier pixels")
    ap.add_argument("--softness", type=float, default=1.5, help="logit noise std")
    ap.add_argument(
        "--irls-iters", type=int, nargs="+", default=[3, 5, 10, 20], help="IRLS rows to run"
    )
    ap.add_argument(
        "--lbfgs-iters", type=int, nargs="+", default=[100],
        help="L-BFGS max_iter rows to run; the first is the reference",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    ap.add_argument("--seed", type=int, default=123, help="data seed")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    data = [
        synthetic_batch(
            args.batch, args.labels, args.frames, *args.size, args.model,
            noise=args.noise, outliers=args.outliers, softness=args.softness, generator=g,
        )
        for _ in range(args.batches)
    ]
    device = torch.device(args.device)
    data = [tuple(x.to(device) for x in batch) for batch in data]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    solvers: list[tuple[str, str, dict]] = [("lstsq", "lstsq", {})]
    solvers += [(f"irls({n})", "irls", {"iters": n}) for n in args.irls_iters]
    is_default = {"irls": lambda o: o.get("iters") == DEFAULT_IRLS_ITERS}
    solvers = [
        (lab + " [default]" if m == DEFAULT_SOLVER and is_default.get(m, bool)(o) else lab, m, o)
        for lab, m, o in solvers
    ]
    solvers += [(f"lbfgs({n})", "lbfgs", {"max_iter": n}) for n in args.lbfgs_iters]
    # The original's: torch's default L-BFGS settings on the scaled l1 coherence loss.
    solvers += [("lbfgs-paper", "lbfgs-paper", {"distance": "l1", "scale": True})]

    rows = []
    for label, method, opts in solvers:
        fit_theta(*data[0], method=method, **opts)  # warm-up (allocator, threads)
        times, objs = [], []
        for flow, proba, A in data:
            sync()
            t0 = time.perf_counter()
            theta = fit_theta(flow, proba, A, method=method, **opts)
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
            objs.append(l1_objective(flow, proba, A, theta))
        rows.append((label, statistics.median(times), torch.cat(objs).mean().item()))

    ref_ms, ref = next(
        ((ms, obj) for label, ms, obj in rows if label.startswith("lbfgs")), rows[0][1:]
    )
    header = ("solver", "ms/batch (median)", "speed-up", "L1 objective (mean, px)", "vs L-BFGS")
    body = [
        (lab, f"{ms:.1f}", f"{ref_ms / ms:.1f}x", f"{obj:.5f}", f"{obj / ref:.4f}")
        for lab, ms, obj in rows
    ]
    print(
        f"# B={args.batch} L={args.labels} T={args.frames} {args.size[0]}x{args.size[1]} "
        f"{args.model}, {args.batches} batches, torch {torch.__version__}, "
        f"{device.type}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f", {torch.get_num_threads()} CPU threads"
    )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(" --- " for _ in header) + "|")
        for r in body:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(h), *(len(r[c]) for r in body)) for c, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in body:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
