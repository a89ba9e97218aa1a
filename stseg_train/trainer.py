"""The training loop: plain PyTorch, resumable exactly, stoppable by epochs, steps, time or Ctrl-C."""

from __future__ import annotations

import logging
import math
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from stseg_deploy.io.atomic import atomic_write
from stseg_deploy.eval.binarise import binarise_exceptbiggest, binarise_fair
from stseg_deploy.errors import summary_line
from stseg_deploy.datasets.prepare import prepared_flow
from stseg_deploy.preprocess import WINDOW
from stseg_kernels import jaccard

from .augment import NOISE_FUNCTIONS, global_motion_augmentation
from .checkpoint import load_checkpoint, save_checkpoint
from .pretrained import load_init_weights
from .config import TrainConfig
from .dataset import FlowWindowDataset
from .losses import total_loss
from .model import UNet3D
from .motion import basis as motion_basis
from .motion import expansion as motion_expansion

log = logging.getLogger(__name__)

METRICS_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_jaccard", "seconds"]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; anything else is passed to torch as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def _check_names(cfg: TrainConfig) -> None:
    """Refuse unknown augmentation, regulariser, motion model or distance names up front,
    before data and model are loaded, rather than at the first step."""
    from .augment import parse_global_motion
    from .losses import DISTANCES, REGULARISERS
    from .motion import MOTION_MODELS

    for name in cfg.flow_augmentation:
        parse_global_motion(name)
    unknown = sorted(set(cfg.regularisation) - set(REGULARISERS))
    if unknown:
        raise ValueError(f"unknown regulariser(s) {unknown}; valid: {sorted(REGULARISERS)}")
    if cfg.param_model not in MOTION_MODELS:
        raise ValueError(f"unknown motion model {cfg.param_model!r}; valid: {sorted(MOTION_MODELS)}")
    if cfg.distance not in DISTANCES:
        raise ValueError(f"unknown distance {cfg.distance!r}; valid: {list(DISTANCES)}")


@dataclass
class StepInfo:
    """What the progress callback receives after each optimisation step: ``step`` counts
    steps done in the run, ``batch`` the batches done of this epoch's ``batches``."""

    epoch: int
    step: int
    batch: int
    batches: int
    loss: float


class Trainer:
    """Trains a :class:`UNet3D` on a DataSplit as configured by a :class:`TrainConfig`.

    Writes to ``cfg.save_dir``: ``config.json``, ``checkpoints/best.pt`` (lowest validation
    loss), ``checkpoints/last.pt``, ``metrics.csv`` (one row per epoch) and ``results.csv``
    (one row per validation frame per epoch, and per training window with ``train_results``).
    """

    def __init__(self, cfg: TrainConfig, resume: bool = False, overwrite: bool = False) -> None:
        """``resume``: continue ``SAVE/checkpoints/last.pt``. ``overwrite``: start afresh in a
        save dir that already holds a run, deleting its checkpoints and CSVs. Without
        either, an existing run is refused rather than silently mixed with the new one."""
        self.cfg = cfg
        self.save_dir = Path(cfg.save_dir)
        self.ckpt_dir = self.save_dir / "checkpoints"
        if not resume:
            self._refuse_or_clear_earlier_run(overwrite)
        self.device = resolve_device(cfg.device)
        _check_names(cfg)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        self.flow_recipe = prepared_flow(cfg.data_file)
        self.train_set = FlowWindowDataset(cfg.data_file, "train", cfg.base_dir, cfg.image_size, cfg.resize)
        self.val_set = FlowWindowDataset(cfg.data_file, "val", cfg.base_dir, cfg.image_size, cfg.resize)
        self.model = UNet3D(cfg.n_labels, cfg.num_layers, cfg.features_start, norm=cfg.norm).to(self.device)
        if cfg.init is not None and not resume:  # on resume, last.pt holds the weights
            log.info("starting from the weights of %s", load_init_weights(self.model, cfg.init))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.basis = motion_basis(cfg.param_model, WINDOW, *cfg.image_size, device=self.device)
        self.expansion = motion_expansion(cfg.param_model, device=self.device)
        # Augmentation randomness has its own generator so resuming restores it exactly.
        self.generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.epoch = 0  # the epoch in progress (or next to start)
        self.batch_in_epoch = 0  # batches of self.epoch already trained
        self.global_step = 0
        self.best_val = math.inf
        self.seconds = 0.0  # training time accumulated across resumes
        self._clock = (time.monotonic(), 0.0)  # (start of this session, seconds before it)
        self.epoch_losses: list[float] = []  # losses of self.epoch so far, across resumes
        self.train_rows: list[dict[str, Any]] = []  # results.csv rows of self.epoch's batches so far
        self.metrics: list[dict[str, Any]] = []
        self._stop_requested = False
        if resume:
            self._resume()

    # -- state ---------------------------------------------------------------------------

    def _refuse_or_clear_earlier_run(self, overwrite: bool) -> None:
        """Starting afresh: delete an earlier run's files if ``overwrite``, else refuse.

        Files without last.pt count too: a run that died at the end of its first epoch,
        before saving last.pt, leaves CSV rows (and perhaps best.pt) that a new run would
        otherwise append to or overwrite unasked.
        """
        names = ("checkpoints/last.pt", "checkpoints/best.pt", "metrics.csv", "results.csv")
        found = [name for name in names if (self.save_dir / name).exists()]
        if not found:
            return
        if not overwrite:
            if "checkpoints/last.pt" in found:
                raise FileExistsError(
                    f"{self.save_dir} already holds a training run ({self.ckpt_dir / 'last.pt'}); "
                    "resume it (--resume) or start again and delete it (--overwrite)"
                )
            raise FileExistsError(
                f"{self.save_dir} holds files of an earlier run that saved no last.pt to resume "
                f"({', '.join(found)}); start again and delete them (--overwrite) or choose another save dir"
            )
        for name in found:
            (self.save_dir / name).unlink(missing_ok=True)

    def _state(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "data_flow": self.flow_recipe,
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "best_val_loss": self.best_val,
            "seconds": self.seconds,
            "metrics": self.metrics,
            "epoch_losses": self.epoch_losses,
            "train_rows": self.train_rows,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def _resume(self) -> None:
        path = self.ckpt_dir / "last.pt"
        # On the CPU: RNG states must stay CPU byte tensors, and load_state_dict moves the
        # weights and optimiser state to the model's device anyway.
        payload = load_checkpoint(path, map_location="cpu")
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.epoch = int(payload["epoch"])
        self.batch_in_epoch = int(payload["batch_in_epoch"])
        self.global_step = int(payload["global_step"])
        self.best_val = float(payload["best_val_loss"])
        self.seconds = float(payload["seconds"])
        self.metrics = list(payload["metrics"])
        self.epoch_losses = list(payload.get("epoch_losses", []))
        self.train_rows = list(payload.get("train_rows", []))
        self.generator.set_state(payload["generator"])
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        log.info("resumed from %s at epoch %d, batch %d", path, self.epoch, self.batch_in_epoch)

    def _save(self, name: str) -> Path:
        path = self.ckpt_dir / name
        save_checkpoint(path, self.model, self._state())
        return path

    def planned_steps(self) -> int:
        """Optimisation steps left before ``epochs`` or ``max_steps`` (time may stop sooner)."""
        left = max(0, (self.cfg.epochs - self.epoch) * self._batches_per_epoch() - self.batch_in_epoch)
        if self.cfg.max_steps is not None:
            left = min(left, max(0, self.cfg.max_steps - self.global_step))
        return left

    # -- data ----------------------------------------------------------------------------

    def _epoch_order(self, epoch: int) -> list[int]:
        # The order depends on (seed, epoch) only, so a resumed epoch replays the same batches.
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.train_set), generator=gen).tolist()

    def _loader(self, dataset, indices: list[int]) -> DataLoader:
        return DataLoader(
            Subset(dataset, indices),
            batch_size=self.cfg.batch_size,
            shuffle=False,
            num_workers=self.cfg.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    # -- steps ---------------------------------------------------------------------------

    def _loss(self, flow: torch.Tensor, proba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scalar loss, (B,) per-sample losses)``."""
        loss, parts, _theta = total_loss(
            flow,
            proba,
            self.basis,
            distance=self.cfg.distance,
            scale=self.cfg.loss_scale,
            regularisation=self.cfg.regularisation,
            solver=self.cfg.solver,
            potts_mask=self.cfg.potts_mask,
            expansion=self.expansion,
        )
        return loss, parts["per_sample"].detach()

    def _noisy_input(self, flow: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.cfg.input_noise:
            return flow
        perturb = NOISE_FUNCTIONS[self.cfg.input_noise_mode]
        return perturb(flow, p=self.cfg.input_noise_prob, generator=generator)

    def _train_step(self, batch: dict) -> float:
        """One optimisation step on ``batch`` (see FlowWindowDataset): flow (B, 2, 3, h, w)
        float32 pixels at model size, gt (B, 3, h, w) bool, has_gt (B, 3) bool, index (B,).
        Returns the batch's loss."""
        self.model.train()
        flow = batch["flow"].to(self.device, non_blocking=True)
        for name in self.cfg.flow_augmentation:
            flow = global_motion_augmentation(flow, name, generator=self.generator)
        proba = self.model(self._noisy_input(flow, self.generator))
        loss, per_sample = self._loss(flow, proba)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {self.global_step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.cfg.train_results:
            # Step numbers count steps done, as in metrics.csv: this batch is step global_step + 1.
            rows = self._result_rows("train", self.epoch, self.global_step + 1, batch, proba, per_sample.cpu().numpy(), self.train_set)
            self.train_rows.extend(rows)
        return float(loss.detach())

    def _result_rows(self, split: str, epoch: int, step: int, batch: dict, proba: torch.Tensor, losses: np.ndarray, dataset) -> list[dict]:
        """One results.csv row per window of a batch, for its centre frame."""
        centre = WINDOW // 2
        labels = proba.detach()[:, :, centre].argmax(dim=1).cpu().numpy()
        rows = []
        for i, index in enumerate(batch["index"].tolist()):
            row = {
                "epoch": epoch,
                "step": step,
                "split": split,
                "flow": dataset.records[index].centre,
                "loss": float(losses[i]),
                "masks_used": int(np.unique(labels[i]).size),
                "jaccard_fair": np.nan,
                "jaccard_exceptbiggest": np.nan,
            }
            if bool(batch["has_gt"][i, centre]):
                gt = batch["gt"][i, centre].numpy()
                fair = binarise_fair(labels[i], gt, self.cfg.n_labels)
                biggest = binarise_exceptbiggest(labels[i], self.cfg.n_labels)
                row["jaccard_fair"] = float(jaccard(gt, fair)[0])
                row["jaccard_exceptbiggest"] = float(jaccard(gt, biggest)[0])
            rows.append(row)
        return rows

    @torch.no_grad()
    def validate(self, epoch: int) -> tuple[float, float, pd.DataFrame]:
        """Validation loss (mean over windows), mean fair Jaccard, and per-frame rows.

        Rows are for each window's centre frame: loss, masks used (distinct labels of the
        argmax), Jaccard with "fair" and with "exceptbiggest" binarisation (NaN without GT).
        """
        self.model.eval()
        rows = []
        # The original perturbs validation inputs too (batch mode); its own generator, keyed
        # by the epoch, keeps a validation reproducible and the training stream untouched.
        val_generator = torch.Generator(device="cpu").manual_seed(self.cfg.seed * 7_919 + epoch)
        for batch in self._loader(self.val_set, list(range(len(self.val_set)))):
            flow = batch["flow"].to(self.device, non_blocking=True)
            net_input = flow
            if self.cfg.input_noise_mode == "batch":
                net_input = self._noisy_input(flow, val_generator)
            proba = self.model(net_input)
            # Per window, as a batch of one, so a window's loss does not depend on its batch.
            losses = np.array([float(self._loss(flow[i : i + 1], proba[i : i + 1])[0]) for i in range(flow.shape[0])])
            rows.extend(self._result_rows("val", epoch, self.global_step, batch, proba, losses, self.val_set))
        table = pd.DataFrame(rows)
        return float(table["loss"].mean()), float(table["jaccard_fair"].mean()), table

    # -- the loop ------------------------------------------------------------------------

    @contextmanager
    def _sigint_stops_gracefully(self) -> Iterator[None]:
        """First Ctrl-C: finish the step, save last.pt, return. Second: abort at once."""
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):  # noqa: ARG001
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            log.warning("interrupt: stopping after this step and saving last.pt (Ctrl-C again to abort)")

        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def fit(self, on_step: Callable[[StepInfo], None] | None = None) -> dict[str, Any]:
        """Train until ``epochs``, ``max_steps``, ``time_budget`` or Ctrl-C, whichever first.

        Each pass trains the rest of the current epoch, then validates it (a partial epoch
        too, when a budget cut it) and saves; Ctrl-C saves last.pt without validating.
        Returns a summary: reason stopped, epochs, steps, best validation loss, paths.
        """
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.save(self.save_dir / "config.json")
        self._clock = (time.monotonic(), self.seconds)
        self._sync_logs_with_checkpoint()
        reason = "epochs"
        with self._sigint_stops_gracefully():
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
            "stopped_by": reason,
            "epoch": self.epoch,
            "steps": self.global_step,
            "best_val_loss": self.best_val,
            "seconds": self.seconds,
            "best": str(self.ckpt_dir / "best.pt"),
            "last": str(self.ckpt_dir / "last.pt"),
        }

    def _batches_per_epoch(self) -> int:
        return math.ceil(len(self.train_set) / self.cfg.batch_size)

    def _stop_reason(self) -> str | None:
        """Why training must stop now, or None: max_steps, time_budget or interrupted."""
        cfg = self.cfg
        if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
            return "max_steps"
        if cfg.time_budget is not None and self.seconds >= cfg.time_budget * 60:
            return "time_budget"
        if self._stop_requested:
            return "interrupted"
        return None

    def _train_epoch(self, on_step: Callable[[StepInfo], None] | None) -> tuple[str | None, int]:
        """Train the batches of ``self.epoch`` not yet trained, in the epoch's fixed order.

        Returns ``(stop reason or None, steps taken)``. A failure saves the steps done so far
        (see :meth:`_save_after_failure`) and is raised.
        """
        stop = self._stop_reason()
        if stop:
            return stop, 0
        remaining = self._epoch_order(self.epoch)[self.batch_in_epoch * self.cfg.batch_size :]
        steps = 0
        try:
            for batch in self._loader(self.train_set, remaining):
                loss = self._train_step(batch)
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
            # Ctrl-C also reaches the DataLoader workers, which then die mid-fetch.
            if not self._stop_requested:
                self._save_after_failure(exc)
                raise
            return "interrupted", steps
        except Exception as exc:
            self._save_after_failure(exc)
            raise
        return None, steps

    def _save_after_failure(self, exc: BaseException) -> None:
        """Keep the steps done so far when a bad file or a bug stops the run mid-epoch.

        The state saved is the one after the last completed step, so --resume redoes the
        failed batch once the cause is fixed.
        """
        if self.global_step > 0:
            self._save("last.pt")
            log.error("stopped by %s: %s; progress saved in %s (fix the cause, then --resume)",
                      type(exc).__name__, summary_line(exc), self.ckpt_dir / "last.pt")

    def _tick(self) -> None:
        started, before = self._clock
        self.seconds = before + time.monotonic() - started

    def _end_epoch(self, partial: bool) -> None:
        """Validate, log metrics, keep the best checkpoint, save last.pt.

        A partial epoch (stopped by steps or time) is validated too, so a short run still
        leaves a best.pt to export; its train_loss covers the batches run so far.
        """
        losses = self.epoch_losses
        val_loss, val_jaccard, rows = self.validate(self.epoch)
        self._tick()  # validation counts towards the time budget
        self.metrics.append(
            {
                "epoch": self.epoch,
                "step": self.global_step,
                "train_loss": float(np.mean(losses)) if losses else np.nan,
                "val_loss": val_loss,
                "val_jaccard": val_jaccard,
                "seconds": round(self.seconds, 3),
            }
        )
        self._write_metrics()
        # Both CSVs run ahead of last.pt until it is saved below; a death in between is
        # undone on resume by _sync_logs_with_checkpoint.
        if self.train_rows:
            rows = pd.concat([pd.DataFrame(self.train_rows), rows], ignore_index=True)
            self.train_rows = []
        self._append_results(rows)
        log.info("epoch %d: val_loss %.5f val_jaccard %.4f", self.epoch, val_loss, val_jaccard)
        if not partial:
            self.epoch += 1
            self.batch_in_epoch = 0
            self.epoch_losses = []
        if val_loss < self.best_val:
            self.best_val = val_loss
            self._save("best.pt")
        self._save("last.pt")

    def _sync_logs_with_checkpoint(self) -> None:
        """Make metrics.csv and results.csv hold exactly the epochs ``self.metrics`` knows.

        _end_epoch writes both CSVs before last.pt, so a run that dies in between leaves rows
        of an epoch the checkpoint never saw; --resume redoes that epoch, which would write
        its rows a second time. Results rows are kept by their (epoch, step) pair, so the
        validated partial epochs of earlier stops stay. Both files are rewritten atomically.
        """
        metrics_path = self.save_dir / "metrics.csv"
        if self.metrics or metrics_path.exists():
            self._write_metrics()
        results_path = self.save_dir / "results.csv"
        if not results_path.exists():
            return
        try:
            results = pd.read_csv(results_path)
        except pd.errors.EmptyDataError:
            # Not even a header: _append_results would then append rows without one.
            results_path.unlink()
            return
        known = {(m["epoch"], m["step"]) for m in self.metrics}
        # Pairs compare by value, so 1.0 == 1; a NaN from a cut-off line never matches.
        keep = np.array([pair in known for pair in zip(results["epoch"], results["step"])], dtype=bool)
        if "split" in results:
            # Training rows (--train-results) carry their own batch's step: they were
            # written with the validation of their epoch, so they stand or fall with it.
            last_known = max((m["step"] for m in self.metrics), default=-1)
            train = (results["split"] == "train").to_numpy()
            keep[train] = (results["step"][train] <= last_known).to_numpy()
        if keep.all():
            return
        dropped = sorted({int(e) for e in results.loc[~keep, "epoch"].dropna()})
        log.warning(
            "%s: dropping %d row(s) of epoch(s) %s that %s does not hold (the run stopped before "
            "saving it); they are redone now", results_path, int((~keep).sum()), dropped,
            self.ckpt_dir / "last.pt",
        )
        with atomic_write(results_path, "w") as handle:
            results[keep].to_csv(handle, index=False)

    def _write_metrics(self) -> None:
        with atomic_write(self.save_dir / "metrics.csv", "w") as handle:
            pd.DataFrame(self.metrics, columns=METRICS_COLUMNS).to_csv(handle, index=False)

    def _append_results(self, rows: pd.DataFrame) -> None:
        path = self.save_dir / "results.csv"
        text = rows.to_csv(index=False, header=not path.exists())
        # One write of the whole epoch's block: a crash never leaves half an epoch.
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
