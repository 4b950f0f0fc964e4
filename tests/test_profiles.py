"""Profiles: how each field a profile sets merges into the study, and the errors a merge can make."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from ablate.cli import main
from ablate.errors import StudyError
from ablate.study import load_study, plan_trials
from tests.conftest import B0_CONFIG, REPO

B2_CONFIG = REPO / "configs" / "segformer" / "segformer_mit-b2_kitti.py"
LR = "optim_wrapper.optimizer.lr"
DROP, PATH_DROP = "model.decode_head.dropout_ratio", "model.backbone.drop_path_rate"


@pytest.fixture()
def study_file(tmp_path: Path, tiny_data: Path) -> Path:
    """A study that sets every field a profile can set, and profiles that set all, none or one."""
    for name in ("enc.pth", "enc2.pth", "city.pth"):
        (tmp_path / name).write_bytes(b"")
    os.symlink(tiny_data, tmp_path / "other-data")
    search = {"params": {"tricks.ohem.thresh": {"uniform": [0.3, 0.9]}}, "recipe": ["ohem"], "n_trials": 8}
    doc = {
        "name": "p",
        "base": str(B2_CONFIG),
        "encoder": str(tmp_path / "enc.pth"),
        "data": {"root": str(tiny_data), "image_scale": [192, 64]},
        "budget": {"iters": 4, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0},
        "resources": {"gpus_per_trial": 0.5, "retries": 3},
        "seeds": [0],
        "overrides": {DROP: 0.2, PATH_DROP: 0.05},
        "pretrain": [{"name": "city", "checkpoint": str(tmp_path / "city.pth")}],
        "zoo": [{"name": "b0", "config": str(B0_CONFIG), "decoder": "city"}],
        "recipe": ["poly_lr"],
        "search": search,
        "profiles": {
            "all": {
                "base": str(B0_CONFIG),
                "encoder": str(tmp_path / "enc2.pth"),
                "data": {"root": str(tmp_path / "other-data"), "image_scale": [96, 32]},
                "budget": {"iters": 2, "val_interval": 1},
                "resources": {"cpus_per_trial": 1},
                "seeds": [1, 2],
                "overrides": {DROP: 0.3},
                "search": {"params": {LR: {"loguniform": [1e-4, 1e-1]}}, "recipe": ["poly_lr"], "n_trials": 2},
                "zoo": [{"name": "b0-plain", "config": str(B0_CONFIG)}],
                "pretrain": [{"name": "city2", "base": str(B0_CONFIG), "budget": {"iters": 3, "val_interval": 3}}],
            },
            "none": {},
            "no-encoder": {"encoder": None},
            "no-zoo": {"zoo": None},
        },
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _fields(spec: object) -> dict:
    return {k: v for k, v in spec.model_dump().items() if k != "profiles"}  # type: ignore[attr-defined]


def test_a_profile_sets_every_field(study_file: Path, tiny_data: Path) -> None:
    plain = load_study(study_file).spec
    spec = load_study(study_file, "all").spec
    here = study_file.parent
    assert spec.base == str(B0_CONFIG) and spec.encoder == str(here / "enc2.pth")
    # mappings merge key by key: what the profile leaves out is the study's, not the default
    assert spec.data.root == str(here / "other-data") and spec.data.image_scale == (96, 32)
    assert spec.data.synth is None
    assert (spec.budget.iters, spec.budget.val_interval) == (2, 1)
    assert (spec.budget.batch_size, spec.budget.crop, spec.budget.workers) == (2, (32, 32), 0)
    assert (spec.resources.cpus_per_trial, spec.resources.gpus_per_trial, spec.resources.retries) == (1, 0.5, 3)
    assert spec.overrides == {DROP: 0.3, PATH_DROP: 0.05}
    # lists and the search block replace the study's
    assert spec.seeds == [1, 2]
    assert [z.name for z in spec.zoo] == ["b0-plain"] and [p.name for p in spec.pretrain] == ["city2"]
    assert list(spec.search.params) == [LR] and spec.search.n_trials == 2
    # what no profile touches stays
    assert spec.recipe == plain.recipe and spec.name == plain.name


def test_the_merged_profile_is_what_trials_are_planned_from(study_file: Path, tmp_path: Path) -> None:
    trials = {(t.name, t.seed): t for t in plan_trials(load_study(study_file, "all"), tmp_path / "runs")}
    assert sorted(trials) == [("b0-plain", 1), ("b0-plain", 2), ("pretrain-city2", 0)]
    pretrain, row = trials[("pretrain-city2", 0)], trials[("b0-plain", 1)]
    assert (pretrain.iters, pretrain.batch_size) == (3, 2)  # the entry's own budget over the profile's
    assert (row.iters, row.batch_size) == (2, 2)
    assert row.resolved_overrides[DROP] == 0.3 and row.resolved_overrides[PATH_DROP] == 0.05
    assert row.data_root == tmp_path / "other-data"


def test_an_empty_profile_changes_nothing(study_file: Path) -> None:
    assert _fields(load_study(study_file, "none").spec) == _fields(load_study(study_file).spec)


@pytest.mark.parametrize(("profile", "field", "cleared"), [("no-encoder", "encoder", None), ("no-zoo", "zoo", [])])
def test_null_in_a_profile_removes_the_field(study_file: Path, profile: str, field: str, cleared: object) -> None:
    plain, spec = _fields(load_study(study_file).spec), _fields(load_study(study_file, profile).spec)
    assert plain[field] and spec[field] == cleared
    assert {k: v for k, v in spec.items() if k != field} == {k: v for k, v in plain.items() if k != field}


def _with_profile(study_file: Path, profile: dict) -> Path:
    doc = yaml.safe_load(study_file.read_text())
    doc["profiles"]["bad"] = profile
    study_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return study_file


@pytest.mark.parametrize(
    ("profile", "field", "fragment"),
    [
        ({"budget": {"iters": 1}}, "profiles.bad.budget", "val_interval (2) exceeds iters (1)"),
        ({"seeds": [1, 1]}, "profiles.bad.seeds", "seeds must be distinct"),
        ({"ladder": ["ohem"]}, "profiles.bad.ladder", "Extra inputs"),
        ({"encoder": "nowhere.pth"}, "profiles.bad.encoder", "encoder checkpoint 'nowhere.pth' not found"),
        ({"data": {"root": "no-data"}}, "profiles.bad.data.root", "dataset folder 'no-data' not found"),
        ({"zoo": [{"name": "x", "config": "none.py"}]}, "profiles.bad.zoo[0].config", "config file 'none.py' not found"),
        ({"pretrain": [{"name": "city", "checkpoint": "gone.pth"}]}, "profiles.bad.pretrain[0].checkpoint", "not found"),
    ],
)
def test_profile_problems_name_the_profile_field(study_file: Path, profile: dict, field: str, fragment: str) -> None:
    path = _with_profile(study_file, profile)
    with pytest.raises(StudyError) as info:
        load_study(path, "bad")
    problems = dict(info.value.problems)
    assert field in problems and fragment in problems[field], problems


def test_a_profile_that_breaks_the_study_exits_2(study_file: Path, capsys: pytest.CaptureFixture) -> None:
    path = _with_profile(study_file, {"budget": {"iters": 1}})
    with pytest.raises(SystemExit) as info:
        main(["plan", str(path), "--profile", "bad", "--tracking-uri", f"sqlite:///{study_file.parent / 'm.db'}"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert "\nprofiles.bad.budget: val_interval (2) exceeds iters (1)" in err
