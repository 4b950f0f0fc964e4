"""A rerun of an unchanged study gets its stored plan back, identical to planning afresh; any
changed input (a config in the inheritance chain, the study, the data, the options) plans again."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from ablate.config import resolve
from ablate.study import load_study, plan, plan_cache, plan_trials
from tests.conftest import B0_CONFIG, write_study

SCHEDULE = "optim_wrapper = dict(optimizer=dict(lr={lr}))\n"


@pytest.fixture()
def project(tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A study whose base config inherits the repository's B0 config, its own copy of the data,
    a fresh cache, and a count of the plans actually computed."""
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    config = tmp_path / "configs" / "model.py"
    config.parent.mkdir()
    (config.parent / "schedule.py").write_text(f"_base_ = [{str(B0_CONFIG)!r}]\n{SCHEDULE.format(lr=0.0001)}")
    config.write_text("_base_ = ['./schedule.py']\n")
    study = write_study(tmp_path / "study.yaml", data, base=str(config),
                        trials=[{"name": "base"}, {"name": "lr", "overrides": {"optim_wrapper.optimizer.lr": 0.01}}])
    computed: list[int] = []
    planner = plan.Planner

    def counting(*args: Any, **kwargs: Any) -> Any:
        computed.append(1)
        return planner(*args, **kwargs)

    monkeypatch.setattr(plan, "Planner", counting)
    return {"root": tmp_path, "study": study, "data": data, "config": config, "computed": computed}


def _bytes(trials: list[Any]) -> list[list[bytes]]:
    """Each field of each trial as pickled bytes (which objects share memory is no part of a plan)."""
    return [[pickle.dumps(getattr(t, f.name)) for f in dataclasses.fields(t)] for t in trials]


def _plan(p: dict[str, Any], **kwargs: Any) -> list[Any]:
    return plan_trials(load_study(p["study"]), p["root"] / "runs", **kwargs)


def test_a_stored_plan_is_the_plan_computed_afresh(project: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    first = _plan(project)
    again = _plan(project)
    assert len(project["computed"]) == 1  # the second plan came from the cache
    assert _bytes(again) == _bytes(first)
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(project["root"] / "other-cache"))
    fresh = _plan(project)
    assert len(project["computed"]) == 2
    assert _bytes(fresh) == _bytes(again)  # byte for byte what planning gives
    assert [t.trial_id for t in fresh] == [t.trial_id for t in first] and fresh[0].config_text


def _edit_inherited_config(p: dict[str, Any]) -> None:
    schedule = p["config"].parent / "schedule.py"
    schedule.write_text(schedule.read_text().replace(SCHEDULE.format(lr=0.0001), SCHEDULE.format(lr=0.0002)))


def _edit_study(p: dict[str, Any]) -> None:
    doc = yaml.safe_load(p["study"].read_text())
    doc["trials"][1]["overrides"]["optim_wrapper.optimizer.lr"] = 0.02
    p["study"].write_text(yaml.safe_dump(doc, sort_keys=False))


def _edit_label(p: dict[str, Any]) -> None:
    label = sorted((p["data"] / "ann_dir" / "train").iterdir())[0]
    label.write_bytes(label.read_bytes() + b"\0")


@pytest.mark.parametrize("edit", [_edit_inherited_config, _edit_study, _edit_label])
def test_a_changed_input_is_planned_again(project: dict[str, Any], edit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _plan(project, with_cost=False)
    edit(project)
    monkeypatch.setattr(resolve, "_PARSED", {})  # a rerun is a fresh process: nothing parsed yet
    after = _plan(project, with_cost=False)
    assert len(project["computed"]) == 2
    assert [t.trial_id for t in after] != [t.trial_id for t in before]
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(project["root"] / "other-cache"))
    assert _bytes(_plan(project, with_cost=False)) == _bytes(after)


def test_other_options_are_other_plans(project: dict[str, Any]) -> None:
    base = _plan(project, with_cost=False)
    moved = plan_trials(load_study(project["study"]), project["root"] / "elsewhere", with_cost=False)
    seeds = _plan(project, with_cost=False, seeds=[0, 1])
    assert len(project["computed"]) == 3
    assert [t.trial_id for t in moved] == [t.trial_id for t in base]
    assert moved[0].work_dir != base[0].work_dir
    assert [t.seed for t in seeds] == [0, 1, 0, 1]


def test_packaged_bases_are_keyed_by_their_package_version(project: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    study = load_study(project["study"])
    before = plan_cache.inputs_digest(study)
    assert before is not None and before == plan_cache.inputs_digest(study)
    monkeypatch.setattr(plan_cache, "_package_version", lambda package: "0.0.0")
    assert plan_cache.inputs_digest(study) != before


def test_unchanged_configs_are_not_parsed_again_to_check_a_study(project: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from ablate import config
    from ablate.errors import StudyError

    load_study(project["study"])

    def no_parse(path: Any) -> Any:
        raise AssertionError(f"parsed {path} again")

    with monkeypatch.context() as patch:
        patch.setattr(config, "load_base", no_parse)
        load_study(project["study"])  # checked before, with these very inputs
    doc = yaml.safe_load(project["study"].read_text())
    doc["trials"][1]["overrides"] = {"optim_wrapper.optimizer.lrr": 0.01}
    project["study"].write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(StudyError, match=r"trials\[1\]\.overrides\.optim_wrapper\.optimizer\.lrr"):
        load_study(project["study"])


def test_configs_the_digest_cannot_read_are_planned_every_time(project: dict[str, Any]) -> None:
    # a computed `_base_`: mmengine evaluates it, the digest reads only literals
    project["config"].write_text("_base_ = [] + ['./schedule.py']\n")
    assert plan_cache.inputs_digest(load_study(project["study"])) is None
    _plan(project, with_cost=False)
    _plan(project, with_cost=False)
    assert len(project["computed"]) == 2
