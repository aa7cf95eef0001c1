"""The plan's arithmetic: schedule, splitting, contention, the build's ETA, the
workers' logged timeline. Timings are injected: nothing here depends on this machine's speed."""

import json

import pytest

from modarith.models.config import RunConfig
from modarith.reporting import report
from modarith.runtime import engine, plan

SPEC = dict(p=31, d_model=128, num_layers=2, batch_size=512, steps=10_001)


def test_schedule_hands_each_task_to_the_worker_that_frees_first():
    rows = plan.schedule([10.0, 8.0, 3.0, 2.0, 4.0], 2)
    assert [(r["worker"], r["start_s"], r["end_s"]) for r in rows] == [
        (0, 0.0, 10.0), (1, 0.0, 8.0), (1, 8.0, 11.0), (0, 10.0, 12.0), (1, 11.0, 15.0)]
    assert plan.makespan_s(rows) == 15.0
    assert plan.makespan_s(plan.schedule([10.0, 8.0, 3.0, 2.0, 4.0], 1)) == 27.0
    text = plan.timeline_text(rows, list("abcde"))
    assert "worker 0: a 0.0–0.2, d 0.2–0.2 min; idle at the end 3 s" in text


def test_one_giant_group_and_one_small_are_split_so_no_worker_idles():
    giant = [RunConfig(model="gpt", seed=s, **SPEC) for s in range(8)]
    small = [RunConfig(model="lstm", seed=0, **{**SPEC, "steps": 2001})]
    groups = [giant, small]
    assert engine.idle_at_end(groups, 2) > engine.SPLIT_IDLE_S  # unsplit: a long idle worker
    split = engine.split_groups(groups, 2)
    assert len(split) > 2 and sorted(c.seed for g in split for c in g if c.model == "gpt") == list(range(8))
    assert engine.idle_at_end(split, 2) <= engine.SPLIT_IDLE_S
    assert engine.makespan(split, 2) < engine.makespan(groups, 2)
    # two groups of equal cost on two workers: nothing idles, nothing is split
    twins = [giant[:4], giant[4:]]
    assert engine.split_groups(twins, 2) == twins


def test_plan_times_groups_at_their_concurrency(monkeypatch):
    monkeypatch.delenv("MODARITH_CONTENTION", raising=False)
    monkeypatch.setenv("MODARITH_WORKERS", "2")
    cfgs = [RunConfig(model="lstm", seed=s, **SPEC) for s in range(2)] + [RunConfig(model="gpt", seed=0, **SPEC)]
    seconds = {"lstm": 1000.0, "gpt": 600.0}  # per run

    def timer(group):
        return seconds[group[0].model] * len(group)

    table = plan.plan(cfgs, None, "cpu", timer=timer)
    c = plan.CPU_CONTENTION
    assert table.attrs["workers"] == 2
    # the engine's rough costs (LSTM pair 1,120 s, GPT 770 s) gain nothing from a split: the
    # pair goes first to worker 0, the GPT to worker 1, each timed at the contention
    assert list(table["eta_s"]) == pytest.approx([2000 * c, 600 * c])
    assert list(table["worker"]) == [0, 1] and table["end_s"].max() == pytest.approx(2000 * c)
    assert "ETA ≈ " + f"{2000 * c / 60:.1f} min on cpu with 2 worker(s)" in plan.plan_text(cfgs, None, "cpu",
                                                                                           timer=timer)
    monkeypatch.setenv("MODARITH_CONTENTION", "1.5")
    assert plan.plan(cfgs, None, "cpu", timer=timer)["end_s"].max() == pytest.approx(3000)
    monkeypatch.setenv("MODARITH_WORKERS", "1")  # one worker alone: no contention
    assert plan.plan(cfgs, None, "cpu", timer=timer)["end_s"].max() == pytest.approx(2600)


@pytest.mark.parametrize("bad", ["0.5", "fast", "nan"])
def test_bad_contention(monkeypatch, bad):
    monkeypatch.setenv("MODARITH_CONTENTION", bad)
    with pytest.raises(ValueError, match="MODARITH_CONTENTION"):
        plan.contention("cpu", 2)


def test_build_plan_counts_training_and_notebooks(monkeypatch, tmp_path):
    """The build's ETA: the training's schedule over 2 workers, then the notebooks over 2
    jobs, each timed as the last build into the output folder recorded it (else the
    constant)."""
    monkeypatch.setenv("MODARITH_CONTENTION", "1.25")
    names = report.select_notebooks("4.1,4.3")
    timer = {"gpt": 100.0, "lstm": 80.0}

    bp = report.build_plan(names, "smoke", "cpu", tmp_path / "none", workers=2,
                           timer=lambda g: timer[g[0].model] * len(g), jobs=2)
    assert bp.workers == 2 and len(bp.groups) >= 2
    expected = [timer[g[0].model] * len(g) * 1.25 for g in bp.groups]
    assert bp.group_seconds == pytest.approx(expected)
    assert bp.seconds == pytest.approx(plan.makespan_s(plan.schedule(expected, 2)))
    assert bp.notebook_seconds == [plan.NOTEBOOK_SECONDS] * 2
    assert bp.total_seconds == pytest.approx(bp.seconds + plan.NOTEBOOK_SECONDS)
    out = tmp_path / "build" / "notebooks"
    out.mkdir(parents=True)
    for name, seconds in zip(names, (30.0, 50.0)):
        (out / report.notebook_file(name)).write_text(json.dumps({"metadata": {"papermill": {"duration": seconds}}}))
    again = report.build_plan(names, "smoke", "cpu", tmp_path / "none", workers=2, timer=lambda g: 10.0,
                              out_dir=out, jobs=1)
    assert again.notebook_seconds == [30.0, 50.0] and again.execution_seconds == 80.0
    line = again.describe("cpu").splitlines()[0]
    assert "executing the notebooks ≈ 1 min 20 s over 1 job" in line and "the build ≈" in line


def test_workers_log_their_timeline(tmp_path):
    """Two tiny groups over two worker processes: one slot each in results/timeline.jsonl."""
    tiny = dict(p=5, d_model=8, num_layers=1, num_heads=2, steps=6, eval_every=3, eval_dense=0)
    cfgs = [RunConfig(model=m, seed=0, **tiny) for m in ("gpt", "lstm")]
    engine.train(cfgs, results=tmp_path, device="cpu", progress=False, workers=2)
    rows = plan.read_timeline(tmp_path)
    assert sorted(r["label"] for r in rows) == ["gpt×1 T=6", "lstm×1 T=6"]
    assert all(0 <= r["start_s"] <= r["end_s"] for r in rows) and {r["worker"] for r in rows} <= {0, 1}
    assert "worker 0:" in plan.timeline_text(rows)


def test_build_prints_planned_and_logged_timelines(tmp_path):
    """After the training the build shows both timelines: the plan's schedule and the slots
    the workers logged in results/timeline.jsonl (the last train call's only)."""
    from modarith.runtime.workers import group_label, log_slot

    groups = [[RunConfig(model="gpt", seed=s, **SPEC) for s in range(2)], [RunConfig(model="lstm", **SPEC)]]
    bp = report.BuildPlan([], 3, [c for g in groups for c in g], groups, [600.0, 300.0], 2)
    ids: dict = {}
    log_slot(tmp_path, 50.0, ids, groups[1], {"pid": 7, "start": 10.0, "end": 20.0})  # an older call
    log_slot(tmp_path, 100.0, ids, groups[0], {"pid": 8, "start": 101.0, "end": 761.0})
    log_slot(tmp_path, 100.0, ids, groups[1], {"pid": 9, "start": 102.0, "end": 400.0})
    text = report.timeline_lines(bp, tmp_path)
    planned, measured = text.split("measured:")
    assert f"worker 0: {group_label(groups[0])} 0.0–10.0 min; idle at the end 0.0 s" in planned
    assert f"worker 1: {group_label(groups[1])} 0.0–5.0 min; idle at the end 5 min 00 s" in planned
    assert f"worker 1: {group_label(groups[0])} 0.0–11.0 min" in measured  # pid 8 was the 2nd worker seen
    assert f"worker 2: {group_label(groups[1])} 0.0–5.0 min" in measured and measured.count("worker") == 2
