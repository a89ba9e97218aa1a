"""The training loop: plain PyTorch, resumable exactly, stoppable by epochs, steps, time or Ctrl-C,
on one process or data-parallel under torchrun (see :mod:`stseg_train.distributed`)."""

from __future__ import annotations

import hashlib
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
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from stseg_deploy.io.atomic import atomic_write
from stseg_deploy.eval.binarise import binarise_exceptbiggest, binarise_fair
from stseg_deploy.errors import error_line
from stseg_deploy.datasets.prepare import prepared_flow
from stseg_deploy.preprocess import WINDOW
from stseg_kernels import jaccard

from . import distributed
from .augment import global_motion_augmentation, perturb_input_noise, perturb_input_noise_batch
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
# What a random draw is for: each stream gets its own generator per key (see Trainer._generator).
AUGMENT, SAMPLE_NOISE, BATCH_NOISE, VAL_NOISE = range(4)
# Why training stops, in the order processes agree on (the last that any process has wins,
# as max_steps wins over time_budget over an interrupt on one process).
STOP_REASONS = (None, "interrupted", "time_budget", "max_steps")


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


def _ignore_stop_signals(_worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C and SIGTERM to the training process, which stops after
    the step (every process at the same one under torchrun) and shuts them down itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


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
            self._refuse_or_clear_earlier_run(overwrite)
        self.device = distributed.device_for(self.dist, resolve_device(cfg.device))
        _check_names(cfg)
        distributed.init(self.dist, self.device)
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
        # Wrapped after the weights are final: DDP starts every process from rank 0's.
        self.net = self.model
        if self.dist.active:
            self.net = DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)

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
            "world_size": self.dist.world_size,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def _resume(self) -> None:
        path = self.ckpt_dir / "last.pt"
        # On the CPU: RNG states must stay CPU byte tensors, and load_state_dict moves the
        # weights and optimiser state to the model's device anyway.
        payload = load_checkpoint(path, map_location="cpu")
        trained_by = int(payload.get("world_size", 1))
        if trained_by != self.dist.world_size:
            raise ValueError(
                f"{path}: trained by {trained_by} process(es), resumed by {self.dist.world_size}; resume it with "
                f"{trained_by} ({'plain stseg-train' if trained_by == 1 else f'torchrun --nproc-per-node {trained_by}'}, "
                f"or that many in all over the nodes), or start a new run from its weights with --init {path}"
            )
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
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        log.info("resumed from %s at epoch %d, batch %d", path, self.epoch, self.batch_in_epoch)

    def _save(self, name: str) -> Path:
        """Save a checkpoint (rank 0 only: every process holds the same state)."""
        path = self.ckpt_dir / name
        if self.dist.is_main:
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

    def _global_batches(self, order: list[int], first: int = 0) -> list[list[int]]:
        """``order`` cut into global batches of ``batch_size``, from batch ``first`` on."""
        size = self.cfg.batch_size
        return [order[i : i + size] for i in range(first * size, len(order), size)]

    def _generator(self, stream: int, *key: int) -> torch.Generator:
        """A generator for one draw, seeded by (seed, stream, key): a sample's augmentation
        depends on (epoch, its index) only, so it is the same whichever process draws it,
        in whatever order, and after a resume."""
        digest = hashlib.blake2b(repr((self.cfg.seed, stream, *key)).encode(), digest_size=8).digest()
        return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest, "little") >> 1)

    def _loader(self, dataset, batches: list[list[int]]) -> DataLoader:
        """Batches of ``dataset`` as listed (dataset indices), in that order."""
        return DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=self.cfg.workers,
            worker_init_fn=_ignore_stop_signals,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    # -- steps ---------------------------------------------------------------------------

    def _loss(self, flow: torch.Tensor, proba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scalar loss, (B,) per-sample losses)``, both differentiable."""
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
        return loss, parts["per_sample"]

    def _augmented(self, flow: torch.Tensor, indices: list[int]) -> torch.Tensor:
        """``flow`` (B, 2, 3, h, w) with each sample's global-motion augmentation, drawn from
        its own generator (epoch, dataset index)."""
        if not self.cfg.flow_augmentation:
            return flow
        out = []
        for i, index in enumerate(indices):
            generator = self._generator(AUGMENT, self.epoch, index)
            sample = flow[i : i + 1]
            for name in self.cfg.flow_augmentation:
                sample = global_motion_augmentation(sample, name, generator=generator)
            out.append(sample)
        return torch.cat(out)

    def _noisy_input(self, flow: torch.Tensor, indices: list[int], batch_number: int) -> torch.Tensor:
        """The network input: ``flow`` with the input noise, per sample (keyed by epoch and
        index) or, in the original's batch mode, one draw per process's batch (keyed by
        epoch, batch number and rank)."""
        cfg = self.cfg
        if not cfg.input_noise:
            return flow
        if cfg.input_noise_mode == "batch":
            generator = self._generator(BATCH_NOISE, self.epoch, batch_number, self.dist.rank)
            return perturb_input_noise_batch(flow, p=cfg.input_noise_prob, generator=generator)
        return torch.cat([
            perturb_input_noise(flow[i : i + 1], p=cfg.input_noise_prob, generator=self._generator(SAMPLE_NOISE, self.epoch, index))
            for i, index in enumerate(indices)
        ])

    def _train_step(self, batch: dict, real: int, global_size: int, batch_number: int) -> float:
        """One optimisation step on this process's part of a global batch.

        ``batch`` (see FlowWindowDataset): flow (b, 2, 3, h, w) float32 pixels at model size,
        gt (b, 3, h, w) bool, has_gt (b, 3) bool, index (b,); its first ``real`` samples count,
        the rest pad a short last batch. The loss each process differentiates is its real
        samples' sum × world_size / ``global_size``, so DDP's average of the gradients is the
        gradient of the global batch's mean loss. Returns that mean (every process the same).
        """
        self.net.train()
        indices = batch["index"].tolist()
        flow = self._augmented(batch["flow"].to(self.device, non_blocking=True), indices)
        proba = self.net(self._noisy_input(flow, indices, batch_number))
        _, per_sample = self._loss(flow, proba)
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
            rows = self._result_rows("train", self.epoch, self.global_step + 1, batch, proba, losses, self.train_set)
            self.train_rows.extend(distributed.all_gather_lists(rows[:real], self.dist))
        return loss

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
        # Sharded like training: each process takes its part of every global batch.
        parts = [
            (number, part[:real])
            for number, whole in enumerate(self._global_batches(list(range(len(self.val_set)))))
            for part, real in [distributed.part_of(whole, self.dist, self.per_process)]
            if real  # no step to take part in: a process with nothing here skips the batch
        ]
        for (number, _), batch in zip(parts, self._loader(self.val_set, [part for _, part in parts])):
            flow = batch["flow"].to(self.device, non_blocking=True)
            net_input = flow
            if self.cfg.input_noise and self.cfg.input_noise_mode == "batch":
                # The original perturbs validation inputs too; keyed by the epoch, a validation
                # is reproducible and leaves the training draws alone.
                generator = self._generator(VAL_NOISE, epoch, number, self.dist.rank)
                net_input = perturb_input_noise_batch(flow, p=self.cfg.input_noise_prob, generator=generator)
            proba = self.model(net_input)
            # Per window, as a batch of one, so a window's loss does not depend on its batch.
            losses = np.array([float(self._loss(flow[i : i + 1], proba[i : i + 1])[0]) for i in range(flow.shape[0])])
            found = self._result_rows("val", epoch, self.global_step, batch, proba, losses, self.val_set)
            rows.extend(zip(batch["index"].tolist(), found))
        # Every process gets every row, in window order: the same table as one process (but
        # for the batch-mode noise, drawn per process's part of each batch).
        rows = [row for _, row in sorted(distributed.all_gather_lists(rows, self.dist), key=lambda pair: pair[0])]
        table = pd.DataFrame(rows)
        return float(table["loss"].mean()), float(table["jaccard_fair"].mean()), table

    # -- the loop ------------------------------------------------------------------------

    @contextmanager
    def _sigint_stops_gracefully(self) -> Iterator[None]:
        """First Ctrl-C: finish the step, save last.pt, return. Second: abort at once.

        Under torchrun every process gets the terminal's Ctrl-C and then the same signal
        again from torchrun's agent, and a scheduler stops jobs with SIGTERM: there, any
        number of SIGINT or SIGTERM only asks for the stop, and the processes agree on the
        step (the agent kills workers that outlast its timeout)."""
        signals = (signal.SIGINT, signal.SIGTERM) if self.dist.active else (signal.SIGINT,)
        previous = {s: signal.getsignal(s) for s in signals}

        def handler(signum, frame):  # noqa: ARG001
            if self._stop_requested and not self.dist.active:
                raise KeyboardInterrupt
            if not self._stop_requested:
                self._stop_requested = True
                again = "" if self.dist.active else " (Ctrl-C again to abort)"
                log.warning("interrupt: stopping after this step and saving last.pt%s", again)

        try:
            for s in signals:
                signal.signal(s, handler)
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            for s, handler_before in previous.items():
                signal.signal(s, handler_before)

    def fit(self, on_step: Callable[[StepInfo], None] | None = None) -> dict[str, Any]:
        """Train until ``epochs``, ``max_steps``, ``time_budget`` or Ctrl-C, whichever first.

        Each pass trains the rest of the current epoch, then validates it (a partial epoch
        too, when a budget cut it) and saves; Ctrl-C saves last.pt without validating.
        Returns a summary: reason stopped, epochs, steps, best validation loss, paths.
        """
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            self.cfg.save(self.save_dir / "config.json", world_size=self.dist.world_size)
            self._sync_logs_with_checkpoint()
        self._clock = (time.monotonic(), self.seconds)
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
        """Why training must stop now, or None: max_steps, time_budget or interrupted; all
        processes agree (their clocks and signals may differ: the weightiest reason wins)."""
        cfg = self.cfg
        reason = None
        if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
            reason = "max_steps"
        elif cfg.time_budget is not None and self.seconds >= cfg.time_budget * 60:
            reason = "time_budget"
        elif self._stop_requested:
            reason = "interrupted"
        return STOP_REASONS[distributed.all_max(STOP_REASONS.index(reason), self.dist, self.device)]

    def _train_epoch(self, on_step: Callable[[StepInfo], None] | None) -> tuple[str | None, int]:
        """Train the batches of ``self.epoch`` not yet trained, in the epoch's fixed order.

        Returns ``(stop reason or None, steps taken)``. A failure saves the steps done so far
        (see :meth:`_save_after_failure`) and is raised.
        """
        stop = self._stop_reason()
        if stop:
            return stop, 0
        batches = self._global_batches(self._epoch_order(self.epoch), first=self.batch_in_epoch)
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
        if self.global_step > 0 and self.dist.is_main:
            self._save("last.pt")
            log.error("stopped by %s: %s; progress saved in %s (fix the cause, then --resume)",
                      type(exc).__name__, error_line(exc, limit=200), self.ckpt_dir / "last.pt")

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
        if self.dist.is_main:
            self._write_metrics()
        # Both CSVs run ahead of last.pt until it is saved below; a death in between is
        # undone on resume by _sync_logs_with_checkpoint.
        if self.train_rows:
            rows = pd.concat([pd.DataFrame(self.train_rows), rows], ignore_index=True)
            self.train_rows = []
        if self.dist.is_main:
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
