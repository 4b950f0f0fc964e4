"""Study shapes: ladder, leave-one-out, zoo, seeds, pretraining dependencies, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ablate import tracking
from ablate.cli import main
from ablate.errors import StudyError
from ablate.study import load_study, plan_trials, run_study
from ablate.trial import TrialState
from tests.conftest import B0_CONFIG, TINY, write_study

LADDER = [
    {"transfer": {"from": "city"}},
    "poly_lr",
    {"class_balanced_loss": {"beta": "auto"}},
    {"ohem": {"thresh": 0.7}},
    {"multiscale_test": {"scales": [0.75, 1.0, 1.25]}},
    "aux_head",
]


def _pretrain(tmp: Path) -> list[dict]:
    city = {"root": str(tmp / "city"), "image_scale": [192, 64], "synth": {**TINY, "seed": 3, "domain": "city"}}
    return [{"name": "city", "data": city, "budget": {"iters": 2, "val_interval": 2}}]


def _problems(path: Path) -> dict[str, str]:
    with pytest.raises(StudyError) as info:
        load_study(path)
    return dict(info.value.problems)


def test_ladder_rungs_add_one_trick_each(tmp_path: Path, tiny_data: Path) -> None:
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, trials=[], ladder=LADDER, pretrain=_pretrain(tmp_path)))
    trials = plan_trials(study, tmp_path / "runs")
    names = [t.name for t in trials]
    assert names == ["pretrain-city", "r0-base", "r1-transfer", "r2-poly_lr", "r3-class_balanced_loss",
                     "r4-ohem", "r5-multiscale_test", "r6-aux_head"]
    for rung, trial in enumerate(trials[1:]):
        assert trial.tags["ablate.rung"] == str(rung)
        assert trial.tags["ablate.tricks"].split(",")[: rung] == [n.split("-", 1)[1] for n in names[2: 2 + rung]]
    pretrain = trials[0]
    assert all(t.depends_on == (pretrain.trial_id,) for t in trials[2:])
    ohem = trials[5].resolved_overrides
    assert ohem["model.decode_head.sampler.type"] == "OHEMPixelSampler" and ohem["model.decode_head.sampler.thresh"] == 0.7
    assert ohem["load_from"] == str(pretrain.best_checkpoint)
    assert trials[2].tags["ablate.dec_pretrained"] == "yes" and trials[1].tags["ablate.dec_pretrained"] == "no"


def test_seeds_repeat_every_trial_with_ids_differing_only_by_seed(tmp_path: Path, tiny_data: Path) -> None:
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, trials=[], ladder=["poly_lr"], seeds=[0, 1]))
    trials = plan_trials(study, tmp_path / "runs")
    assert [(t.name, t.seed) for t in trials] == [("r0-base", 0), ("r0-base", 1), ("r1-poly_lr", 0), ("r1-poly_lr", 1)]
    assert len({t.trial_id for t in trials}) == 4
    a, b = trials[0].config_text.splitlines(), trials[1].config_text.splitlines()
    assert [x for x, y in zip(a, b) if x != y] == [line for line in a if "seed=0" in line]


def test_leave_one_out_and_zoo(tmp_path: Path, tiny_data: Path) -> None:
    recipe = ["poly_lr", {"ohem": {}}, "aux_head"]
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, trials=[], recipe=recipe, mode="leave_one_out"))
    trials = plan_trials(study, tmp_path / "runs")
    assert [(t.name, t.tags["ablate.tricks"]) for t in trials] == [
        ("full", "poly_lr,ohem,aux_head"), ("minus-poly_lr", "ohem,aux_head"),
        ("minus-ohem", "poly_lr,aux_head"), ("minus-aux_head", "poly_lr,ohem")]
    zoo = [{"name": "b0*", "config": str(B0_CONFIG)}, {"name": "b0", "config": str(B0_CONFIG), "decoder": "city"}]
    study = load_study(write_study(tmp_path / "z.yaml", tiny_data, trials=[], zoo=zoo, recipe=["poly_lr"], pretrain=_pretrain(tmp_path)))
    trials = {t.name: t for t in plan_trials(study, tmp_path / "runs")}
    assert trials["b0"].tags["ablate.tricks"] == "transfer,poly_lr" and trials["b0"].depends_on
    assert trials["b0*"].tags["ablate.dec_pretrained"] == "no" and trials["b0"].tags["ablate.dec_pretrained"] == "yes"
    assert trials["b0"].tags["ablate.model"] == "b0"


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ({"ladder": ["poly_lr", "dropout"]}, "ladder[1]", "unknown trick 'dropout'"),
        ({"ladder": [{"ohem": {"thresh": 2}}]}, "ladder[0].ohem.thresh", "less than 1"),
        ({"ladder": [{"ohem": {"treshold": 0.5}}]}, "ladder[0].ohem.treshold", "Extra inputs"),
        ({"ladder": [{"transfer": {"from": "nowhere"}}]}, "ladder[0].transfer.from", "no pretrain entry"),
        ({"ladder": [{"transfer": {"checkpoint": "/no/such.pth"}}]}, "ladder[0].transfer.checkpoint", "not found"),
        ({"ladder": []}, "", "at least one of"),
        ({"mode": "leave_one_out"}, "", "needs a non-empty 'recipe'"),
        ({"ladder": ["poly_lr"], "pretrain": [
            {"name": "a", "tricks": [{"transfer": {"from": "b"}}]},
            {"name": "b", "tricks": [{"transfer": {"from": "a"}}]}]}, "pretrain[0].tricks", "circular dependency: a -> b -> a"),
    ],
)
def test_bad_shapes_are_field_errors(tmp_path: Path, tiny_data: Path, extra: dict, field: str, fragment: str) -> None:
    doc = {"trials": [], **extra}
    problems = _problems(write_study(tmp_path / "s.yaml", tiny_data, **doc))
    assert field in problems, problems
    assert fragment in problems[field]


def test_plan_json_lists_trials_without_running(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, trials=[], ladder=["poly_lr", {"ohem": {}}])
    with pytest.raises(SystemExit) as info:
        main(["plan", str(path), "--json", "--runs-dir", str(tmp_path / "runs"), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert info.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in doc["trials"]] == ["r0-base", "r1-poly_lr", "r2-ohem"]
    assert all(t["status"] == "pending" and t["cost_gflop"] > 0 for t in doc["trials"])
    assert doc["trials"][2]["resolved_overrides"]["optim_wrapper.optimizer.type"] == "AdamW"
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "runs").exists()


def test_ladder_end_to_end_with_pretraining(tmp_path: Path, tiny_data: Path) -> None:
    """Real tiny trainings: pretrain first, transfer really loads it, TTA and aux loss show up."""
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data, trials=[], ladder=LADDER, pretrain=_pretrain(tmp_path)))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=tmp_path / "runs")
    assert [r.state for r in outcome.results] == [TrialState.FINISHED] * 8, [r.error for r in outcome.results]
    client = tracking.client(uri)
    runs = {r.name: client.get_run(r.run_id) for r in outcome.results}
    assert runs["pretrain-city"].info.end_time <= runs["r1-transfer"].info.start_time
    assert (tmp_path / "runs" / "tiny" / outcome.results[0].trial_id / "best.pth").exists()
    log = Path(client.download_artifacts(runs["r1-transfer"].info.run_id, "logs", str(tmp_path / "dl")))
    assert "Load checkpoint from" in "".join(p.read_text() for p in log.glob("*.log"))
    assert runs["r5-multiscale_test"].data.tags["ablate.final_eval"] == "tta"
    assert "ss_mIoU" in runs["r5-multiscale_test"].data.metrics
    assert "aux.loss_ce" in runs["r6-aux_head"].data.metrics and "aux.loss_ce" not in runs["r5-multiscale_test"].data.metrics
    assert runs["r1-transfer"].data.tags["ablate.devices"] == "cpu"
