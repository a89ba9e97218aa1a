"""The training-side benchmarks (python -m stseg_train.bench.solvers / .train_step) on tiny shapes."""

from __future__ import annotations

from stseg_train.bench import solvers, train_step


def test_solver_bench_compares_every_solver_with_lbfgs(capsys) -> None:
    solvers.main(["--batch", "2", "--labels", "2", "--size", "12", "16", "--batches", "1",
                  "--irls-iters", "3", "--lbfgs-iters", "5", "--threads", "1"])
    out = capsys.readouterr().out
    for name in ("lstsq", "irls", "lbfgs(5)", "lbfgs-paper"):
        assert name in out


def test_train_step_bench_reports_a_step_time(capsys) -> None:
    train_step.main(["--size", "12", "16", "--batch", "2", "--features-start", "4", "--steps", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "ms per training step" in out and "theta fit" in out
