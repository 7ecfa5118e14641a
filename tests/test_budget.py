"""The training budget (epochs from the data, early stop, warm-up and a floor), the learning-rate search and EMA,
through the CLI with the shipped LeNet-5 config on a few tiny shapes."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from helpers import CONFIGS, newest_run, run_cli

from visiontasks.callbacks.budget import WARMUP_START, warmup_cosine

LENET = str(CONFIGS / "lenet5.yaml")
TINY = ["--data.init_args.batch_size=8", "--data.init_args.num_workers=0", "--trainer.limit_val_batches=1",
        "--trainer.logger=false", "--pictures.curves=false", "--pictures.grid=0", "--pictures.filters=false"]  # fmt: skip
BUDGET_LINE = "Training budget: "


def budget_line(caplog) -> str:
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(BUDGET_LINE)]
    assert len(lines) == 1, lines
    return lines[0]


def last_checkpoint() -> dict:
    return torch.load(newest_run() / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize(
    "samples, steps, epochs, why",
    [(48, 3, 4, "min_steps 12 need 4 epochs"),
     pytest.param(200, 15, 2, "min_epochs 2 (min_steps 12 need 1)", marks=pytest.mark.slow)],
    ids=["small-set-more-epochs", "big-set-min-epochs"],
)
def test_the_budget_chooses_epochs_from_the_data_and_says_why(caplog, samples, steps, epochs, why):
    caplog.set_level(logging.INFO, logger="visiontasks")
    run_cli("fit", "--config", LENET, f"--data.init_args.num_samples={samples}", "--budget.min_steps=12",
            "--budget.min_epochs=2", "--budget.extend=null", *TINY)  # fmt: skip
    line = budget_line(caplog)
    assert f"batch 8, {steps} steps an epoch, {epochs} epochs ({steps * epochs} steps): {why}" in line, line
    last = last_checkpoint()
    assert (last["epoch"], last["global_step"]) == (epochs - 1, steps * epochs)
    assert last["callbacks"]["TrainingBudget"]["epochs"] == epochs  # kept for a resumed run
    # the schedule ended on its floor, not at zero: 5 % of the config's peak 0.003
    (group,) = last["optimizer_states"][0]["param_groups"]
    assert group["lr"] == pytest.approx(0.003 * 0.05, rel=1e-6)


@pytest.mark.slow
def test_given_max_epochs_win_over_the_budget(caplog):
    caplog.set_level(logging.INFO, logger="visiontasks")
    run_cli("fit", "--config", LENET, "--data.init_args.num_samples=48", "--trainer.max_epochs=1", *TINY)
    assert "1 epochs (3 steps): trainer.max_epochs=1 given" in budget_line(caplog)
    assert last_checkpoint()["global_step"] == 3


def extended_epochs(history: list, epochs: int = 8, extend: float | None = 0.01, mode: str = "max", budget=None) -> int:
    """The epochs the budget trains after the monitor took ``history`` over its ``epochs`` chosen epochs: one
    value an epoch, a list for an epoch that validated more than once, ``None`` for one that did not validate."""
    from types import SimpleNamespace

    from visiontasks.callbacks.budget import TrainingBudget

    budget = budget or TrainingBudget(extend=extend, patience=None)
    budget.epochs = epochs
    progress = SimpleNamespace(is_last_batch=False)
    fit_loop = SimpleNamespace(max_epochs=epochs, epoch_loop=SimpleNamespace(batch_progress=progress))
    task = SimpleNamespace(monitor="val/miou", monitor_mode=mode)
    for epoch, values in enumerate(history):
        values = [] if values is None else values if isinstance(values, list) else [values]
        for n, value in enumerate(values):
            progress.is_last_batch = n == len(values) - 1
            trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"val/miou": torch.tensor(value)}, fit_loop=fit_loop,
                                      current_epoch=epoch, global_step=10 * (epoch + 1), is_global_zero=True, should_stop=False)  # fmt: skip
            budget.on_validation_end(trainer, task)
        trainer = SimpleNamespace(fit_loop=fit_loop, current_epoch=epoch, global_step=10 * (epoch + 1), is_global_zero=True,
                                  should_stop=False)  # fmt: skip
        budget.on_train_epoch_end(trainer, task)
    assert fit_loop.max_epochs == budget.epochs
    return budget.epochs


def test_the_budget_trains_on_while_the_monitor_still_rises(caplog):
    caplog.set_level(logging.INFO, logger="visiontasks")
    plateau = [0.41, 0.54, 0.90, 0.87, 0.984, 0.984, 0.987, 0.987]  # the U-Net on the shapes: done at 8
    assert extended_epochs(plateau) == 8
    assert not caplog.records
    rising = [0.03, 0.09, 0.10, 0.09, 0.11, 0.14, 0.18, 0.22]  # the U-Net on the digits: half as many again
    assert extended_epochs(rising) == 12
    assert "Training budget extended to 12 epochs: val/miou rose by 0.0800 over the last 2 epochs" in caplog.text
    assert extended_epochs(rising + [0.30, 0.35, 0.42, 0.48]) == 18  # still rising at 12: again
    assert extended_epochs(rising + [0.22] * 4) == 12  # flat at 12: ends there
    assert extended_epochs(rising, extend=None) == 8
    assert extended_epochs([-v for v in rising], mode="min") == 8  # losses are not extended


def test_added_epochs_stretch_the_cosine_or_keep_the_floor_rate(caplog):
    from visiontasks.callbacks.budget import TrainingBudget

    caplog.set_level(logging.INFO, logger="visiontasks")
    rising = [0.03, 0.09, 0.10, 0.09, 0.11, 0.14, 0.18, 0.22]  # 10 steps an epoch: the extension begins at step 80
    floor = TrainingBudget(patience=None, lr_floor=0.05, extend_lr="floor")
    assert extended_epochs(rising, budget=floor) == 12 and floor.extended_at == 80
    assert "the learning rate stays at the floor (0.05 of the peak)" in caplog.text
    assert floor.lr_factor(79, 120) == pytest.approx(warmup_cosine(79, 120, 0.03, 0.05))  # before: as it was
    assert [floor.lr_factor(step, 120) for step in (80, 100, 119)] == [0.05] * 3
    stretch = TrainingBudget(patience=None, lr_floor=0.05)  # the default
    assert extended_epochs(rising, budget=stretch) == 12
    assert stretch.lr_factor(81, 120) > 0.25  # the stretched cosine raises the rate again
    zero = TrainingBudget(patience=None, lr_floor=0.0, extend_lr="floor")
    assert extended_epochs(rising, budget=zero) == 8  # added epochs at a rate of 0 would not learn: says so instead
    assert "not extended although val/miou rose by 0.0800: the added epochs would train at the floor rate, 0" in caplog.text
    resumed = TrainingBudget(extend_lr="floor")
    resumed.load_state_dict(floor.state_dict())
    assert resumed.extended_at == 80 and resumed.lr_factor(90, 120) == 0.05


def test_extension_counts_epochs_not_validations():
    rising = [0.03, 0.09, 0.10, 0.09, 0.11, 0.14, 0.18, 0.22]
    # val_check_interval 0.5: two validations an epoch; the window is still the last 2 epochs, decided at the last one
    twice = [[v - 0.01, v] for v in rising]
    assert extended_epochs(twice) == 12
    flat = [[v - 0.01, v] for v in [0.03, 0.09, 0.10, 0.09, 0.11, 0.14, 0.14, 0.14]]
    assert extended_epochs(flat) == 8
    assert extended_epochs(flat[:-1] + [[0.30, 0.14]]) == 8  # a mid-epoch high is not the epoch's value: its last is
    # check_val_every_n_epoch 3: the last epoch (7) has no validation; the epochs before it decide
    sparse = [None, None, 0.05, None, None, 0.10, None, None]
    assert extended_epochs(sparse) == 8  # epoch 6 and 7 had no validation: nothing recent to judge by
    sparse = [None, 0.05, None, 0.07, None, 0.10, 0.16, None]
    assert extended_epochs(sparse) == 12


def test_a_checkpoint_with_the_older_history_loads():
    from visiontasks.callbacks.budget import TrainingBudget

    budget = TrainingBudget()
    budget.load_state_dict({"epochs": 8, "best": 0.2, "wait": 0, "history": [0.1, 0.2]})
    assert budget.history == [(0, 0.1), (1, 0.2)]
    budget.load_state_dict({"epochs": 8, "best": 0.2, "wait": 0, "history": [[3, 0.1], [4, 0.2]]})
    assert budget.history == [(3, 0.1), (4, 0.2)]


def test_warm_up_then_cosine_to_the_floor():
    total, warmup, floor = 200, 0.05, 0.05
    factors = [warmup_cosine(step, total, warmup, floor) for step in range(total + 50)]
    assert factors[0] == WARMUP_START and factors[10] == 1.0  # 10 warm-up steps, rising
    assert all(a < b for a, b in zip(factors[:10], factors[1:11]))
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))  # then only down
    assert min(factors) == pytest.approx(floor) and factors[total] == pytest.approx(floor) == factors[-1]
    assert warmup_cosine(0, math.inf, 0.0, floor) == 1.0


@pytest.mark.slow
def test_early_stop_after_patience_epochs_without_a_better_monitor(caplog):
    caplog.set_level(logging.INFO, logger="visiontasks")
    run_cli("fit", "--config", LENET, "--data.init_args.num_samples=48", "--budget.patience=1", "--trainer.max_epochs=6",
            "--model.init_args.optimizer.init_args.lr=1e-12", *TINY)  # fmt: skip  # val/acc cannot move
    stops = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Early stop: val/acc")]
    assert stops and "for 1 epochs (patience 1)" in stops[0], stops
    assert last_checkpoint()["epoch"] == 1  # epoch 0 set the best, epoch 1 did not beat it: stop


@pytest.mark.slow
def test_ema_weights_are_the_ones_validated_and_kept_in_the_best_checkpoint():
    run_cli("fit", "--config", LENET, "--data.init_args.num_samples=96", "--trainer.max_epochs=2",
            "--trainer.callbacks+=visiontasks.EMA", "--trainer.callbacks.decay=0.9", *TINY)  # fmt: skip
    run = newest_run()
    (best,) = (run / "checkpoints").glob("best-*.ckpt")
    saved = torch.load(best, weights_only=True)
    averaged, trained = saved["state_dict"], saved["current_model_state"]
    assert any(not torch.equal(averaged[k], trained[k]) for k in averaged)  # two sets of weights, the average first
    score = next(v["best_model_score"] for k, v in saved["callbacks"].items() if k.startswith("BestCheckpoint"))
    validated = run_cli("validate", "--config", LENET, f"--ckpt_path={best}", "--data.init_args.num_samples=96", *TINY)
    assert float(validated.trainer.callback_metrics["val/acc"]) == pytest.approx(float(score), abs=1e-6)


@pytest.mark.slow
def test_lr_find_writes_its_plot_into_this_run_and_trains_with_the_suggestion(caplog):
    caplog.set_level(logging.INFO, logger="visiontasks")
    assert not list(Path("runs").rglob("lr_find.png")) if Path("runs").exists() else True
    run_cli("fit", "--config", LENET, "--data.init_args.num_samples=96", "--trainer.max_epochs=1", "--lr_find=true", *TINY)
    found = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Learning-rate search: peak lr")]
    assert found and str(newest_run() / "lr_find.png") in found[0], found
    assert (newest_run() / "lr_find.png").stat().st_size > 1000
    peak = float(found[0].split("peak lr ")[1].split(" ")[0])
    schedule = last_checkpoint()["lr_schedulers"][0]
    assert schedule["base_lrs"][0] == pytest.approx(peak, rel=1e-2) and peak != 0.003


@pytest.mark.slow
def test_a_budgeted_run_with_ema_resumed_ends_as_the_uninterrupted_run():
    """The chosen epochs, the schedule's position and the weights' average are all restored (the kill-and-resume
    tests of test_runs.py do the same with a SIGKILL mid-epoch, in a process of their own)."""
    args = ["--config", LENET, "--data.init_args.num_samples=48", "--budget.min_steps=12", "--trainer.callbacks+=visiontasks.EMA",
            "--trainer.callbacks.decay=0.9", *TINY]  # fmt: skip
    run_cli("fit", *args, "--experiment=whole")
    whole = last_checkpoint()
    run_cli("fit", *args, "--experiment=stopped", "--trainer.callbacks+=faults.StopAfterEpoch", "--trainer.callbacks.epoch=1")
    assert last_checkpoint()["epoch"] == 1  # stopped half-way through the budget's 4 epochs
    run_cli("fit", *args, "--experiment=stopped", "--ckpt_path=last")
    again = last_checkpoint()
    assert (again["epoch"], again["global_step"]) == (whole["epoch"], whole["global_step"]) == (3, 12)
    for key in ("state_dict", "current_model_state"):  # the average and the weights being trained
        for name, value in whole[key].items():
            torch.testing.assert_close(again[key][name], value, rtol=0, atol=1e-6)
