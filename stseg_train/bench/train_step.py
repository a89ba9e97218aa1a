"""Time one training step (augment, forward, θ fit, loss, backward, Adam) at a given size.

Inputs are smooth random flows, so the time is the step's alone, without data loading.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from stseg_deploy.preprocess import WINDOW

from ..augment import global_motion_augmentation, perturb_input_noise
from ..config import DEFAULT_AUGMENTATION, default
from ..export_wrapper import example_input
from ..losses import total_loss
from ..model import UNet3D
from ..motion import basis as motion_basis
from ..solvers import fit_theta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", nargs=2, type=int, default=list(default("image_size")), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=default("batch_size"))
    parser.add_argument("--features-start", type=int, default=default("features_start"))
    parser.add_argument("--labels", type=int, default=default("n_labels"))
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    h, w = args.size
    model = UNet3D(args.labels, 3, args.features_start).to(device)  # 3 levels, the default U-Net
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    basis = motion_basis(default("param_model"), WINDOW, h, w, device=device)
    gen = torch.Generator().manual_seed(0)
    flow = example_input(args.batch, h, w).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    step_times, solver_times = [], []
    for step in range(args.steps + 1):
        sync()
        t0 = time.perf_counter()
        aug = global_motion_augmentation(flow, DEFAULT_AUGMENTATION, generator=gen)
        proba = model(perturb_input_noise(aug, generator=gen))
        loss, _, _ = total_loss(aug, proba, basis)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()
        t1 = time.perf_counter()
        fit_theta(aug.detach(), proba.detach(), basis)
        sync()
        if step:  # the first step warms up allocators and kernels
            step_times.append(t1 - t0)
            solver_times.append(time.perf_counter() - t1)
    step_ms = statistics.median(step_times) * 1e3
    solver_ms = statistics.median(solver_times) * 1e3
    print(
        f"{device.type}, {torch.get_num_threads()} threads, batch {args.batch}, {h}x{w}, "
        f"{args.features_start} features, L={args.labels}: {step_ms:.0f} ms per training step "
        f"(median of {args.steps}); of which theta fit ~{solver_ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
