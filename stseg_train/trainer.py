"""The training loop: plain PyTorch, resumable exactly, stoppable by epochs, steps, time or Ctrl-C,
on one process or data-parallel under torchrun (see :mod:`stseg_train.distributed`).

What the loop keeps in step (run folder, stopping, random streams, results rows) lives in
modules of its own, so that this one reads as the loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from stseg_deploy.datasets.prepare import prepared_flow
from stseg_deploy.errors import error_line
from stseg_deploy.preprocess import WINDOW

from . import distributed, rundir, streams
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .dataset import FlowWindowDataset
from .losses import total_loss
from .model import UNet3D
from .motion import basis as motion_basis
from .motion import expansion as motion_expansion
from .preflight import check_names, resolve_device
from .pretrained import load_init_weights
from .pseudo import PseudoLabels, matched_cross_entropy
from .results_rows import window_rows
from .stopping import StopRequest, Stopwatch, ignore_stop_signals, stop_reason

log = logging.getLogger(__name__)


class Trainer:
    """Trains a :class:`UNet3D` on a DataSplit as configured by a :class:`TrainConfig`.

    Writes to ``cfg.save_dir``: ``config.json``, ``checkpoints/best.pt`` (lowest validation
    loss), ``checkpoints/last.pt``, ``metrics.csv`` (one row per epoch) and ``results.csv``
    (one row per validation frame per epoch, and per training window with ``train_results``).
    """

    def __init__(self, cfg: TrainConfig, resume: bool = False, overwrite: bool = False, dist: distributed.Dist | None = None) -> None:
        """``resume``: continue ``SAVE/checkpoints/last.pt``. ``overwrite``: start afresh in a
        save dir that already holds a run, deleting its checkpoints and CSVs. Without
        either, an existing run is refused rather than silently mixed with the new one.
        ``dist``: this process's place in a data-parallel run (default: as torchrun's
        environment says; a world of one without it)."""
        self.cfg = cfg
        self.dist = dist if dist is not None else distributed.from_env()
        if cfg.batch_size % self.dist.world_size:
            raise ValueError(
                f"--batch-size {cfg.batch_size} is the global batch and must split evenly over the "
                f"{self.dist.world_size} processes: give a multiple of {self.dist.world_size}"
            )
        self.per_process = cfg.batch_size // self.dist.world_size
        self.save_dir = Path(cfg.save_dir)
        self.ckpt_dir = self.save_dir / "checkpoints"
        if not resume:
            rundir.refuse_or_clear_earlier_run(self.save_dir, overwrite)
        self.device = distributed.device_for(self.dist, resolve_device(cfg.device))
        check_names(cfg)
        distributed.init(self.dist, self.device)
        streams.seed_globals(cfg.seed)
        self.flow_recipe = prepared_flow(cfg.data_file)
        pseudo = PseudoLabels(cfg.pseudo_labels, cfg.image_size) if cfg.pseudo_labels is not None else None
        self.train_set = FlowWindowDataset(cfg.data_file, "train", cfg.base_dir, cfg.image_size, cfg.resize, pseudo=pseudo)
        if pseudo is not None:
            log.info("pseudo-labels from %s: %s", cfg.pseudo_labels, pseudo.coverage(self.train_set.records, cfg.data_file))
        self.val_set = FlowWindowDataset(cfg.data_file, "val", cfg.base_dir, cfg.image_size, cfg.resize)
        self.model = UNet3D(cfg.n_labels, cfg.num_layers, cfg.features_start, norm=cfg.norm).to(self.device)
        if cfg.init is not None and not resume:  # on resume, last.pt holds the weights
            log.info("starting from the weights of %s", load_init_weights(self.model, cfg.init))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.basis = motion_basis(cfg.param_model, WINDOW, *cfg.image_size, device=self.device)
        self.expansion = motion_expansion(cfg.param_model, device=self.device)
        self.epoch = 0  # the epoch in progress (or next to start)
        self.batch_in_epoch = 0  # batches of self.epoch already trained
        self.global_step = 0
        self.best_val = math.inf
        self.seconds = 0.0  # training time accumulated across resumes
        self._clock = Stopwatch()  # restarted by fit from the seconds saved so far
        self.epoch_losses: list[float] = []  # losses of self.epoch so far, across resumes
        self.train_rows: list[dict[str, Any]] = []  # results.csv rows of self.epoch's batches so far
        self.metrics: list[dict[str, Any]] = []
        self.stop_request = StopRequest(self.dist)
        if resume:
            self._resume()
        # Wrapped after the weights are final: DDP starts every process from rank 0's.
        self.net = self.model
        if self.dist.active:
            self.net = DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)

    # -- the loop ------------------------------------------------------------------------

    def fit(self, on_step: Callable[[StepInfo], None] | None = None) -> dict[str, Any]:
        """Train until ``epochs``, ``max_steps``, ``time_budget`` or Ctrl-C, whichever first.

        Each pass trains the rest of the current epoch, then validates it (a partial epoch
        too, when a budget cut it) and saves; Ctrl-C saves last.pt without validating.
        Returns a summary: reason stopped, epochs, steps, best validation loss, paths.
        """
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            self.cfg.save(self.save_dir / "config.json", world_size=self.dist.world_size)
            rundir.sync_logs_with_checkpoint(self.save_dir, self.metrics)
        self._clock = Stopwatch(self.seconds)
        reason = "epochs"
        with self.stop_request.on_signals():
            while self.epoch < self.cfg.epochs:
                stop, steps = self._train_epoch(on_step)
                if stop == "interrupted":
                    self._save("last.pt")
                    reason = stop
                    break
                epoch_done = self.batch_in_epoch >= self._batches_per_epoch()
                if steps == 0 and not epoch_done:  # stopped before any new step: nothing to validate
                    reason = stop or reason
                    break
                self._end_epoch(partial=not epoch_done)
                if stop:
                    reason = stop
                    break
        log.info("training stopped (%s) after %d steps", reason, self.global_step)
        return {
            "stopped_by": reason, "epoch": self.epoch, "steps": self.global_step, "best_val_loss": self.best_val,
            "seconds": self.seconds, "best": str(self.ckpt_dir / "best.pt"), "last": str(self.ckpt_dir / "last.pt"),
        }

    def _train_epoch(self, on_step: Callable[[StepInfo], None] | None) -> tuple[str | None, int]:
        """Train the batches of ``self.epoch`` not yet trained, in the epoch's fixed order.

        Returns ``(stop reason or None, steps taken)``. A failure saves the steps done so far
        (see :meth:`_save_after_failure`) and is raised.
        """
        stop = self._stop_reason()
        if stop:
            return stop, 0
        order = streams.epoch_order(self.cfg.seed, self.epoch, len(self.train_set))
        batches = self._global_batches(order, first=self.batch_in_epoch)
        parts = [distributed.part_of(whole, self.dist, self.per_process) for whole in batches]
        steps = 0
        try:
            loader = self._loader(self.train_set, [indices for indices, _ in parts])
            for number, (batch, (_, real), whole) in enumerate(zip(loader, parts, batches), start=self.batch_in_epoch):
                loss = self._train_step(batch, real, len(whole), number)
                self.epoch_losses.append(loss)
                steps += 1
                self.batch_in_epoch += 1
                self.global_step += 1
                self._tick()
                if on_step is not None:
                    on_step(StepInfo(self.epoch, self.global_step, self.batch_in_epoch, self._batches_per_epoch(), loss))
                stop = self._stop_reason()
                if stop:
                    return stop, steps
        except RuntimeError as exc:
            # A DataLoader worker that died (killed from outside: Ctrl-C itself is ignored there).
            if not self.stop_request.requested:
                self._save_after_failure(exc)
                raise
            return "interrupted", steps
        except Exception as exc:
            self._save_after_failure(exc)
            raise
        return None, steps

    def _train_step(self, batch: dict, real: int, global_size: int, batch_number: int) -> float:
        """One optimisation step on this process's part of a global batch.

        ``batch`` (see FlowWindowDataset): flow (b, 2, 3, h, w) float32 pixels at model size,
        gt (b, 3, h, w) bool, has_gt (b, 3) bool, index (b,), with pseudo-labels pseudo
        (b, 3, h, w) int64 (their cross-entropy joins the loss); its first ``real`` samples count,
        the rest pad a short last batch. The loss each process differentiates is its real
        samples' sum × world_size / ``global_size``, so DDP's average of the gradients is the
        gradient of the global batch's mean loss. Returns that mean (every process the same).
        """
        self.net.train()
        indices = batch["index"].tolist()
        flow = streams.augmented(batch["flow"].to(self.device, non_blocking=True), indices, self.cfg, self.epoch)
        proba = self.net(streams.noisy_input(flow, indices, self.cfg, self.epoch, batch_number, self.dist.rank))
        _, per_sample = self._loss(flow, proba)
        if "pseudo" in batch:
            # Validation keeps the unsupervised loss alone, so runs with and without compare.
            target = batch["pseudo"].to(self.device, non_blocking=True)
            per_sample = per_sample + self.cfg.pseudo_weight * matched_cross_entropy(proba, target)
        weights = (torch.arange(len(indices), device=self.device) < real).to(per_sample.dtype)
        objective = (per_sample * weights).sum() * (self.dist.world_size / global_size)
        loss = distributed.all_sum(float(per_sample[:real].detach().sum()), self.dist, self.device) / global_size
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at step {self.global_step}")
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        self.optimizer.step()
        if self.cfg.train_results:
            # Step numbers count steps done, as in metrics.csv: this batch is step global_step + 1.
            losses = per_sample.detach().cpu().numpy()
            rows = window_rows("train", self.epoch, self.global_step + 1, batch, proba, losses, self.train_set, self.cfg.n_labels)
            self.train_rows.extend(distributed.all_gather_lists(rows[:real], self.dist))
        return loss

    def _end_epoch(self, partial: bool) -> None:
        """Validate, log metrics, keep the best checkpoint, save last.pt.

        A partial epoch (stopped by steps or time) is validated too, so a short run still
        leaves a best.pt to export; its train_loss covers the batches run so far.
        """
        val_loss, val_jaccard, rows = self.validate(self.epoch)
        self._tick()  # validation counts towards the time budget
        self.metrics.append(rundir.metrics_row(self.epoch, self.global_step, self.epoch_losses, val_loss, val_jaccard, self.seconds))
        if self.dist.is_main:
            rundir.write_metrics(self.save_dir, self.metrics)
        # Both CSVs run ahead of last.pt until it is saved below; a death in between is
        # undone on resume by rundir.sync_logs_with_checkpoint.
        if self.train_rows:
            rows = pd.concat([pd.DataFrame(self.train_rows), rows], ignore_index=True)
            self.train_rows = []
        if self.dist.is_main:
            rundir.append_results(self.save_dir, rows)
        log.info("epoch %d: val_loss %.5f val_jaccard %.4f", self.epoch, val_loss, val_jaccard)
        if not partial:
            self.epoch += 1
            self.batch_in_epoch = 0
            self.epoch_losses = []
        if val_loss < self.best_val:
            self.best_val = val_loss
            self._save("best.pt")
        self._save("last.pt")

    @torch.no_grad()
    def validate(self, epoch: int) -> tuple[float, float, pd.DataFrame]:
        """Validation loss (mean over windows), mean fair Jaccard, and per-frame rows
        (see :func:`.results_rows.window_rows`)."""
        self.model.eval()
        rows = []
        # Sharded like training: each process takes its part of every global batch.
        parts = [
            (number, part[:real])
            for number, whole in enumerate(self._global_batches(list(range(len(self.val_set)))))
            for part, real in [distributed.part_of(whole, self.dist, self.per_process)]
            if real  # no step to take part in: a process with nothing here skips the batch
        ]
        for (number, _), batch in zip(parts, self._loader(self.val_set, [part for _, part in parts])):
            flow = batch["flow"].to(self.device, non_blocking=True)
            proba = self.model(streams.noisy_val_input(flow, self.cfg, epoch, number, self.dist.rank))
            # Per window, as a batch of one, so a window's loss does not depend on its batch.
            losses = np.array([float(self._loss(flow[i : i + 1], proba[i : i + 1])[0]) for i in range(flow.shape[0])])
            found = window_rows("val", epoch, self.global_step, batch, proba, losses, self.val_set, self.cfg.n_labels)
            rows.extend(zip(batch["index"].tolist(), found))
        # Every process gets every row, in window order: the same table as one process (but
        # for the batch-mode noise, drawn per process's part of each batch).
        rows = [row for _, row in sorted(distributed.all_gather_lists(rows, self.dist), key=lambda pair: pair[0])]
        table = pd.DataFrame(rows)
        return float(table["loss"].mean()), float(table["jaccard_fair"].mean()), table

    # -- helpers of the loop -------------------------------------------------------------

    def planned_steps(self) -> int:
        """Optimisation steps left before ``epochs`` or ``max_steps`` (time may stop sooner)."""
        left = max(0, (self.cfg.epochs - self.epoch) * self._batches_per_epoch() - self.batch_in_epoch)
        if self.cfg.max_steps is not None:
            left = min(left, max(0, self.cfg.max_steps - self.global_step))
        return left

    def _loss(self, flow: torch.Tensor, proba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scalar loss, (B,) per-sample losses)``, both differentiable."""
        cfg = self.cfg
        loss, parts, _theta = total_loss(
            flow, proba, self.basis, distance=cfg.distance, scale=cfg.loss_scale, regularisation=cfg.regularisation,
            solver=cfg.solver, potts_mask=cfg.potts_mask, expansion=self.expansion, mover_weight=cfg.mover_weight,
        )
        return loss, parts["per_sample"]

    def _stop_reason(self) -> str | None:
        return stop_reason(self.cfg, self.global_step, self.seconds, self.stop_request.requested, self.dist, self.device)

    def _tick(self) -> None:
        self.seconds = self._clock.seconds()

    def _batches_per_epoch(self) -> int:
        return math.ceil(len(self.train_set) / self.cfg.batch_size)

    def _global_batches(self, order: list[int], first: int = 0) -> list[list[int]]:
        """``order`` cut into global batches of ``batch_size``, from batch ``first`` on."""
        size = self.cfg.batch_size
        return [order[i : i + size] for i in range(first * size, len(order), size)]

    def _loader(self, dataset: FlowWindowDataset, batches: list[list[int]]) -> DataLoader:
        """Batches of ``dataset`` as listed (dataset indices), in that order."""
        return DataLoader(
            dataset, batch_sampler=batches, num_workers=self.cfg.workers, worker_init_fn=ignore_stop_signals,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
        )

    def _save_after_failure(self, exc: BaseException) -> None:
        """Keep the steps done so far when a bad file or a bug stops the run mid-epoch: the state
        after the last completed step, so --resume redoes the failed batch once the cause is fixed."""
        if self.global_step > 0 and self.dist.is_main:
            self._save("last.pt")
            log.error("stopped by %s: %s; progress saved in %s (fix the cause, then --resume)",
                      type(exc).__name__, error_line(exc, limit=200), self.ckpt_dir / "last.pt")

    # -- checkpoints ---------------------------------------------------------------------

    def _save(self, name: str) -> Path:
        """Save a checkpoint (rank 0 only: every process holds the same state)."""
        path = self.ckpt_dir / name
        if self.dist.is_main:
            save_checkpoint(path, self.model, self._state())
        return path

    def _state(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(), "data_flow": self.flow_recipe, "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "global_step": self.global_step,
            "best_val_loss": self.best_val, "seconds": self.seconds, "metrics": self.metrics,
            "epoch_losses": self.epoch_losses, "train_rows": self.train_rows, "world_size": self.dist.world_size,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def _resume(self) -> None:
        path = self.ckpt_dir / "last.pt"
        # On the CPU: RNG states must stay CPU byte tensors, and load_state_dict moves the
        # weights and optimiser state to the model's device anyway.
        payload = load_checkpoint(path, map_location="cpu")
        rundir.refuse_other_world_size(path, int(payload.get("world_size", 1)), self.dist.world_size)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.epoch, self.batch_in_epoch = int(payload["epoch"]), int(payload["batch_in_epoch"])
        self.global_step, self.best_val = int(payload["global_step"]), float(payload["best_val_loss"])
        self.seconds, self.metrics = float(payload["seconds"]), list(payload["metrics"])
        self.epoch_losses, self.train_rows = list(payload.get("epoch_losses", [])), list(payload.get("train_rows", []))
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        log.info("resumed from %s at epoch %d, batch %d", path, self.epoch, self.batch_in_epoch)


@dataclass
class StepInfo:
    """What the progress callback receives after each optimisation step: ``step`` counts
    steps done in the run, ``batch`` the batches done of this epoch's ``batches``."""

    epoch: int
    step: int
    batch: int
    batches: int
    loss: float

