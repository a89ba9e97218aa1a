"""The training-side benchmarks (python -m stseg_train.bench.solvers / .train_step) on tiny shapes."""

from __future__ import annotations

import re

import pytest

from stseg_train.bench import solvers, train_step


def test_solver_bench_compares_every_solver_with_lbfgs(capsys) -> None:
    solvers.main(["--batch", "2", "--labels", "2", "--size", "12", "16", "--batches", "1",
                  "--irls-iters", "3", "--lbfgs-iters", "5", "--threads", "1"])
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line and not line.startswith(("#", "solver"))}
    assert set(rows) == {"lstsq", "irls(3)", "lbfgs(5)", "lbfgs-paper"}
    for _, ms, speed, objective, ratio in rows.values():
        assert float(ms) > 0 and float(speed.rstrip("x")) > 0 and float(objective) > 0
        # The objective column, relative to L-BFGS's, is what the last column says.
        assert float(ratio) == pytest.approx(float(objective) / float(rows["lbfgs(5)"][3]), abs=2e-4)
    # IRLS minimises the L1 objective, plain least squares does not: it never fits better.
    assert float(rows["irls(3)"][3]) <= float(rows["lstsq"][3])


def test_train_step_bench_reports_a_step_time(capsys) -> None:
    train_step.main(["--size", "12", "16", "--batch", "2", "--features-start", "4", "--steps", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    found = re.search(r": ([\d.]+) ms per training step \(median of 1\); of which theta fit ~([\d.]+) ms", out)
    assert found, out
    step_ms, fit_ms = float(found.group(1)), float(found.group(2))
    assert 0 < fit_ms <= step_ms
