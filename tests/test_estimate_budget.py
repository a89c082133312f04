"""Estimate and budget (issue 20 item 3): ``batch --estimate`` gives GPU seconds and cost per film and in all from
the journal's history (a stated default where it has none), running nothing; the scheduler starts no job that would
take the batch past ``--budget`` (what it spent, the running jobs' estimates and this job's)."""
from __future__ import annotations

import json

import pytest

from animstudio.cli import main
from animstudio.cloud.estimate import DEFAULT_SECONDS, KindCost, estimate, kind_costs
from animstudio.cloud.jobs import plan_batch
from animstudio.cloud.journal import Journal
from animstudio.cloud.pool import Endpoint
from animstudio.cloud.scheduler import Scheduler, Settings
from test_cloud_batch import film_storyboard


def _history(journal: Journal, tmp_path) -> None:
    """A finished batch: keyframes took 4 and 6 GPU s, shots 10 (one copied, which says nothing of cost)."""
    films = plan_batch([film_storyboard(tmp_path / "old", "Old", shots=2)])
    journal.add_batch("old", tmp_path / "out", films)
    seconds = {"keyframe": iter([4.0, 6.0]), "shot": iter([10.0, 10.0, 0.0]), "compose": iter([2.0])}
    for row in journal.jobs("old"):
        spent = next(seconds[row.job.kind])
        journal.transition(row.uid, "completed", "copy" if spent == 0 else "a", gpu_seconds=spent, cost=spent * 0.5)


def test_estimate_from_history_or_a_stated_default(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    films = plan_batch([film_storyboard(tmp_path / "new", "New", shots=3, seed=7)])
    fresh = estimate(films, journal, rate=0.5)
    assert {k: b.jobs for k, b in fresh.basis.items()} == {"keyframe": 0, "shot": 0, "compose": 0}
    assert fresh.gpu_seconds == 3 * DEFAULT_SECONDS["keyframe"] + 4 * DEFAULT_SECONDS["shot"] + DEFAULT_SECONDS["compose"]
    assert "no history: a default" in "\n".join(fresh.lines())
    _history(journal, tmp_path)
    assert kind_costs(journal)["keyframe"] == KindCost(5.0, 2) and kind_costs(journal)["shot"] == KindCost(10.0, 2)
    measured = estimate(films, journal, rate=0.5)
    # three keyframes at 5, four shots at 10, the compose at 2
    assert measured.gpu_seconds == pytest.approx(3 * 5 + 4 * 10 + 2)
    assert measured.cost == pytest.approx(57 * 0.5) and measured.films == {"new": (57.0, 28.5)}
    # the same storyboard again: its keyframes and shots are copied (free), only the compose runs
    again = estimate(plan_batch([tmp_path / "old" / "storyboard.json"]), journal, rate=0.5)
    assert again.cached == 5 and again.gpu_seconds == pytest.approx(2.0)


def test_batch_estimate_prints_per_film_and_runs_nothing(tmp_path, capsys):
    board = film_storyboard(tmp_path / "film", "Film", shots=1)
    pool = tmp_path / "pool.yaml"
    pool.write_text("endpoints:\n  - {name: a, url: 'http://127.0.0.1:9', cost_per_gpu_second: 0.002}\n"
                    "  - {name: b, url: 'http://127.0.0.1:9', cost_per_gpu_second: 0.004}\n")
    out = tmp_path / "out"
    assert main(["batch", str(board), "--pool", str(pool), "-o", str(out), "--estimate", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)["estimate"]
    seconds = DEFAULT_SECONDS["keyframe"] + 2 * DEFAULT_SECONDS["shot"] + DEFAULT_SECONDS["compose"]
    assert answer["gpu_seconds"] == seconds and answer["rate"] == pytest.approx(0.003)
    assert answer["films"]["film"]["cost"] == pytest.approx(seconds * 0.003)
    assert not out.exists()  # no journal, no folder: nothing ran
    assert main(["batch", str(board), "--pool", str(pool), "-o", str(out), "--estimate"]) == 0
    text = capsys.readouterr().out
    assert "film: 230 GPU s, about 0.6900" in text and "in all:" in text


def test_no_job_starts_that_would_pass_the_budget(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    films = plan_batch([film_storyboard(tmp_path / "b", "B", shots=2)])
    journal.add_batch("b", tmp_path / "out", films)
    endpoint = Endpoint("a", "http://127.0.0.1:9", cost_per_gpu_second=1.0)
    scheduler = Scheduler(journal, [endpoint], tmp_path / "out", Settings(budget=70.0))
    scheduler._costs = {"keyframe": KindCost(20.0, 3), "shot": KindCost(40.0, 3), "compose": KindCost(10.0, 3)}
    rows = {r.job.label: r for r in journal.jobs("b")}
    first, second = rows["b:keyframe:s1"], rows["b:keyframe:s2"]
    assert scheduler._affordable(first, endpoint, list(rows.values()))
    scheduler._claimed.add(first.uid)  # running: 20 estimated
    assert scheduler._affordable(second, endpoint, list(rows.values()))  # 20 + 20 <= 70
    scheduler._claimed.add(second.uid)
    assert not scheduler._affordable(rows["b:shot:end"], endpoint, list(rows.values()))  # 40 + 40 > 70
    # the keyframes done, at 25 each (more than estimated): 50 spent, a 40 s shot would reach 90
    for row in (first, second):
        journal.transition(row.uid, "completed", "a", gpu_seconds=25.0, cost=25.0)
    scheduler._claimed.clear()
    rows = {r.job.label: r for r in journal.jobs("b")}
    assert not scheduler._affordable(rows["b:shot:s1"], endpoint, list(rows.values()))
    # no budget: everything is affordable
    assert Scheduler(journal, [endpoint], tmp_path / "out", Settings())._affordable(
        rows["b:shot:s1"], endpoint, list(rows.values()))
