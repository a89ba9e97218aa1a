"""End-to-end demo: synthetic data → fine-tuning → export → inference → evaluation, then
real video with the bundled default model.

Runs the same commands a user types, so it doubles as a smoke test of the CLIs. The
training step fine-tunes the bundled default model (``--init``) for a fixed, small number of
steps on multi-object synthetic videos: it shows the training path end to end in a minute,
and what it scores reproduces. When ../shared/data is beside the repository it also segments
the real DAVIS blackswan flows, and prepares the 6 held-out DAVIS development sequences
(flows for those alone: ``stseg-prepare --split val``) and scores the bundled model on them
with the DAVIS protocol.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from stseg_deploy.zoo import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
SHARED_BLACKSWAN = REPO.parent / "shared" / "data" / "blackswan"
SHARED_DAVIS = REPO.parent / "shared" / "data" / "davis2016-train-240p"
BIN = Path(sys.executable).parent


def run(*args: str) -> str:
    command = [str(BIN / args[0]), *args[1:]]
    print(f"\n$ {shlex.join([args[0], *args[1:]])}", flush=True)
    result = subprocess.run(command, check=False, stdout=subprocess.PIPE, text=True)
    print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        sys.exit(f"demo step failed ({args[0]}, exit {result.returncode})")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "demo_out", help="Where everything is written.")
    # A fixed number of steps, not a time budget, so the scores reproduce from machine to
    # machine; 60 steps take under a minute on a 2-core CPU.
    parser.add_argument("--steps", type=int, default=60, help="Fine-tuning steps.")
    parser.add_argument("--sequences", type=int, default=12, help="Synthetic videos (25%% validation), 2 or 3 objects each.")
    parser.add_argument("--frames", type=int, default=20, help="Flow frames per synthetic video.")
    args = parser.parse_args()
    out: Path = args.out
    data, run_dir, preds = out / "data", out / "run", out / "preds"
    started = time.perf_counter()
    # davis/ is kept: stseg-prepare keeps flows made the same way, so a rerun reuses them.
    for folder in (run_dir, preds, out / "blackswan", out / "video", out / "davis_preds"):
        if folder.exists():  # the demo owns these; a rerun starts them afresh
            shutil.rmtree(folder)

    run(
        "stseg-synth", str(data), "--sequences", str(args.sequences), "--frames", str(args.frames), "--size", "64", "112",
        "--seed", "0", "--val-fraction", "0.25", "--objects", "2", "3",
    )
    prefix = data / "DataSplit" / "Synth"
    train_args = [
        "stseg-train", "--data-file", str(prefix), "--base-dir", str(data), "--save-dir", str(run_dir),
        "--preset", "small", "--init", DEFAULT_MODEL, "--lr", "5e-4",
        "--epochs", "1000", "--max-steps", str(args.steps), "--workers", "0",
    ]
    run(*train_args)
    model = out / "model.onnx"
    run("stseg-export", str(run_dir / "checkpoints" / "best.pt"), "--onnx", str(model))
    run("stseg-infer", "--model", str(model), "--data-file", str(prefix), "--split", "val", "--base-dir", str(data), "--out", str(preds), "--cut-size", "10")
    result = run("stseg-eval", str(preds), "--data-file", str(prefix), "--split", "val", "--base-dir", str(data), "--cut-size", "10", "--objects")
    # The last line is J=...; J_objects=... (each object matched to its own segment) precedes it.
    j_line, objects_line = result.strip().splitlines()[-1], result.strip().splitlines()[-2].split(" (")[0]
    # A raw video, from frames to an overlay MP4: flow is computed on the fly (OpenCV DIS).
    from stseg_synth.video import render_video

    video_dir = out / "video"
    clip = render_video(
        video_dir / "clip.mp4", n_frames=48, size=(192, 320), seed=0, fmt="mp4", masks_dir=video_dir / "gt" / "clip",
        labels_dir=video_dir / "objects" / "clip",
    )
    print(f"\nrendered {clip.path} (48 frames of moving textured shapes over a panning background)")
    run("stseg-infer", "--model", str(model), str(clip.path), "--out", str(video_dir / "preds"), "--overlay", "--cut-size", "10")
    video_lines = run("stseg-eval", str(video_dir / "preds"), "--gt-dir", str(video_dir / "objects"), "--objects").strip().splitlines()
    video_j = f"{video_lines[-1]}, {video_lines[-2].split(' (')[0]}"
    run("stseg-viz", str(video_dir / "preds" / "clip"), "--gt", str(video_dir / "gt" / "clip"))
    blackswan = None
    if SHARED_BLACKSWAN.is_dir():
        blackswan = out / "blackswan"
        run("stseg-infer", "--model", str(model), str(SHARED_BLACKSWAN), "--out", str(blackswan), "--cut-size", "10")
    davis_jf = None
    if SHARED_DAVIS.is_dir():
        # Real video: the shared DAVIS-2016 copy's development sequences to flows and a
        # DataSplit, the bundled model on them, the official J and F.
        prep, davis_preds = out / "davis", out / "davis_preds"
        run("stseg-prepare", "davis", str(SHARED_DAVIS), "--resolution", "240p", "--split", "val", "--out", str(prep))
        split = ["--data-file", str(prep / "DAVIS2016"), "--split", "val", "--base-dir", str(prep)]
        run("stseg-infer", *split, "--out", str(davis_preds))
        davis_jf = run("stseg-eval", str(davis_preds), *split, "--protocol", "davis2016").strip().splitlines()[-1]
        # What a user without ground truth gets: the segments stseg-infer chose as moving objects.
        davis_fg = run(
            "stseg-eval", str(davis_preds), *split, "--protocol", "davis2016", "--binary", "foreground",
            "--out", str(out / "davis_scores_foreground"),
        ).strip().splitlines()[-1]
    print("\n" + "=" * 72)
    print(f"demo finished in {(time.perf_counter() - started) / 60:.1f} min")
    print(f"training run (checkpoints, metrics.csv, results.csv): {run_dir}")
    print(f"exported model:                                      {model}")
    print(f"validation segmentations (labels.npy, PNGs):         {preds}/<sequence>/")
    print(f"scores:                                              {preds / 'scores.csv'}, {preds / 'summary.csv'}")
    print(f"raw video -> overlay MP4:                            {video_dir / 'preds' / 'clip' / 'overlay.mp4'}")
    print(f"  its contact sheet:                                 {video_dir / 'preds' / 'clip' / 'contact_sheet.png'}  ({video_j})")
    if blackswan is not None:
        print(f"DAVIS blackswan segmentation:                        {blackswan / 'blackswan'}/")
    if davis_jf is not None:
        print(f"DAVIS-2016 (240p, 6 held-out sequences, bundled {DEFAULT_MODEL}): {out / 'davis_preds'}/")
        print(f"  segments chosen with the ground truth (the paper's protocol): {davis_jf}")
        print(f"  moving objects chosen by stseg, no ground truth (foreground/): {davis_fg}")
    print(f"validation videos: {j_line}, {objects_line}")


if __name__ == "__main__":
    main()
