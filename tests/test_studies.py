"""Study shapes: ladder, leave-one-out, zoo, seeds, pretraining dependencies, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from ablate.cli import main
from ablate.study import load_study, plan_trials, run_study
from ablate.trial import TrialState
from tests.conftest import B0_CONFIG, REPO, TINY, write_study

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
    client = MlflowClient(uri)
    runs = {r.name: client.get_run(r.run_id) for r in outcome.results}
    assert runs["pretrain-city"].info.end_time <= runs["r1-transfer"].info.start_time
    assert (tmp_path / "runs" / "tiny" / outcome.results[0].trial_id / "best.pth").exists()
    log = Path(client.download_artifacts(runs["r1-transfer"].info.run_id, "logs", str(tmp_path / "dl")))
    assert "Load checkpoint from" in "".join(p.read_text() for p in log.glob("*.log"))
    assert runs["r5-multiscale_test"].data.tags["ablate.final_eval"] == "tta"
    assert "ss_mIoU" in runs["r5-multiscale_test"].data.metrics
    assert "aux.loss_ce" in runs["r6-aux_head"].data.metrics and "aux.loss_ce" not in runs["r5-multiscale_test"].data.metrics
    assert runs["r1-transfer"].data.tags["ablate.devices"] == "cpu"


# --- include:, trick_params, plan as a dry run, the shipped studies ----------------------------

def test_include_merges_under_the_study_and_trick_params_win(tmp_path: Path, tiny_data: Path) -> None:
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump({
        "budget": {"iters": 2, "val_interval": 2, "log_interval": 1},
        "overrides": {"model.decode_head.dropout_ratio": 0.3},
        "trick_params": {"ohem": {"thresh": 0.62}},
        "seeds": [5],
    }))
    ladder = [{"ohem": {"thresh": 0.9, "min_kept": 50, "scale_min_kept": False}}]
    path = write_study(tmp_path / "s.yaml", tiny_data, include=["tuned.yaml"], trials=[], ladder=ladder,
                       budget={"iters": 4, "batch_size": 2, "crop": [32, 32], "workers": 0})
    study = load_study(path)
    budget = study.spec.budget
    assert (budget.iters, budget.val_interval, budget.log_interval) == (4, 2, 1)  # the study's keys win, per key
    assert study.spec.seeds == [0] and study.spec.trick_params == {"ohem": {"thresh": 0.62}}
    base, ohem = plan_trials(study, tmp_path / "runs")
    assert base.resolved_overrides["model.decode_head.dropout_ratio"] == 0.3
    sampler = {k.rsplit(".", 1)[1]: v for k, v in ohem.resolved_overrides.items() if ".sampler." in k}
    assert sampler == {"type": "OHEMPixelSampler", "thresh": 0.62, "min_kept": 50}  # trick_params win, per key
    assert json.loads(ohem.params["trick.ohem"])["thresh"] == 0.62


def test_a_search_trial_gets_the_trick_params(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    """`ablate tune`: the study's trick_params reach the trial a search designs; searched values win."""
    search = {"params": {"tricks.ohem.thresh": {"uniform": [0.3, 0.4]}}, "recipe": [{"ohem": {"min_kept": 50}}],
              "pruner": {"type": "none"}}
    budget = {"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}
    path = write_study(tmp_path / "s.yaml", tiny_data, search=search, budget=budget,
                       trick_params={"ohem": {"min_kept": 77, "scale_min_kept": False, "thresh": 0.99}})
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with pytest.raises(SystemExit) as info:
        main(["tune", str(path), "--n-trials", "1", "--dispatcher", "local", "--tracking-uri", uri,
              "--runs-dir", str(tmp_path / "runs")])
    assert info.value.code == 0, capsys.readouterr().err
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny")
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.`ablate.optuna_trial` = '0'")
    params = json.loads(run.data.params["trick.ohem"])
    assert params["min_kept"] == 77 and params["scale_min_kept"] is False
    assert 0.3 <= params["thresh"] <= 0.4


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_plan_says_what_data_run_would_generate_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    synth = {**TINY, "height": 64, "width": 192}
    root = tmp_path / "not" / "yet" / "kitti"
    pretrain = [{"name": "city", "data": {"root": str(tmp_path / "not" / "city"), "image_scale": [192, 64],
                                          "synth": {**synth, "seed": 3, "domain": "city"}},
                 "budget": {"iters": 2, "val_interval": 2}}]
    path = write_study(tmp_path / "s.yaml", root, trials=[], pretrain=pretrain,
                       ladder=[{"transfer": {"from": "city"}}, {"class_balanced_loss": {"beta": 0.99}}],
                       data={"root": str(root), "image_scale": [192, 64], "synth": synth})
    before = _files(tmp_path)
    argv = ["plan", str(path), "--runs-dir", str(tmp_path / "runs"), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert f"data: would generate synthetic data at {root} (6 train / 3 val, 64x192, seed 0)" in out
    assert f"data: would generate synthetic data at {tmp_path / 'not' / 'city'} (6 train / 3 val, 64x192, seed 3, city domain)" in out
    assert out.count("(after data)") == 4
    with pytest.raises(SystemExit):
        main([*argv, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["trial_id"], t["depends_on"]) for t in doc["trials"]] == [
        ("pretrain-city", None, []), ("r0-base", None, []), ("r1-transfer", None, ["pretrain-city"]),
        ("r2-class_balanced_loss", None, ["pretrain-city"])]
    assert all(t["cost_gflop"] > 0 for t in doc["trials"])
    assert [d["generate"]["domain"] for d in doc["data"]] == ["kitti", "city"]
    assert _files(tmp_path) == before  # no dataset, no parent folder, no store, no runs folder
    # `run` plans with generation: the data appears and every id is known
    trials = plan_trials(load_study(path), tmp_path / "runs")
    assert (root / "img_dir" / "train").is_dir() and all(len(t.trial_id) == 12 for t in trials)
    assert trials[2].depends_on == (trials[0].trial_id,)


def _shipped() -> list[tuple[str, str | None]]:
    cases = []
    for path in sorted((REPO / "studies").glob("*.yaml")):
        profiles = yaml.safe_load(path.read_text()).get("profiles") or {}
        cases += [(path.name, None), *((path.name, name) for name in profiles)]
    return cases


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize(("name", "profile"), _shipped())
def test_every_shipped_study_plans_under_every_profile(tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture, name: str, profile: str | None,
                                                       tiny_ade20k: Path) -> None:
    """`ablate plan` on each study file as shipped, from a folder holding configs/, with the paper
    data and checkpoints stubbed; small profiles also estimate costs (paper-scale ones would build
    every model at full crop, minutes on a CPU)."""
    path = REPO / "studies" / name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "kitti").symlink_to(tiny_data)
    (tmp_path / "data" / "ade20k").symlink_to(tiny_ade20k)
    for value in _strings(yaml.safe_load(path.read_text())):
        if value.startswith("checkpoints/"):
            (tmp_path / value).parent.mkdir(exist_ok=True)
            (tmp_path / value).write_bytes(b"")
    before = _files(tmp_path)
    argv = ["plan", str(path), "--json", "--runs-dir", str(tmp_path / "runs"), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]
    with pytest.raises(SystemExit) as info:
        main([*argv, *(["--profile", profile] if profile else ["--no-cost"])])
    captured = capsys.readouterr()
    assert info.value.code == 0, captured.err
    doc = json.loads(captured.out)
    study = load_study(path, profile)
    seeds = len(study.spec.seeds)
    expected = sum(1 if d.pretrain is not None else seeds for d in study.designs)
    assert len(doc["trials"]) == expected and all(t["status"] == "pending" for t in doc["trials"])
    ids = [t["trial_id"] for t in doc["trials"]]
    if any(not d["ready"] for d in doc["data"]):  # shipped profiles generate all the data they read
        assert ids == [None] * len(ids)
    else:
        assert all(len(i) == 12 for i in ids)
    assert all(t["cost_gflop"] > 0 if profile else t["cost_gflop"] is None for t in doc["trials"])
    if profile is None:  # the paper's numbers are shown beside trials of those names
        assert set(study.spec.reference) <= {t["name"] for t in doc["trials"]}
    assert _files(tmp_path) == before
