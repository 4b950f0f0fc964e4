"""Bad study files: every problem reported as `field.path: message`, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.cli import main
from ablate.errors import StudyError
from ablate.study import load_study
from tests.conftest import write_study


def _problems(path: Path, profile: str | None = None) -> dict[str, str]:
    with pytest.raises(StudyError) as info:
        load_study(path, profile)
    return dict(info.value.problems)


def test_valid_study_loads_with_absolute_paths(tmp_path: Path, tiny_data: Path) -> None:
    study = load_study(write_study(tmp_path / "s.yaml", tiny_data))
    assert study.base.is_absolute() and study.data_root == tiny_data
    assert study.spec.budget.iters == 4


PRETRAIN_CYCLE = [{"name": "a", "tricks": [{"transfer": {"from": "b"}}]},
                  {"name": "b", "tricks": [{"transfer": {"from": "a"}}]}]
MALFORMED = {  # case: (sections replacing the valid study's, raw YAML appended, field, message fragment)
    "wrong_type": ({"budget": {"iters": "many"}}, "", "budget.iters", "integer"),
    "unknown_budget_key": ({"budget": {"iters": 4, "lr": 0.1}}, "", "budget.lr", "Extra inputs"),
    "unknown_key": ({"colour": "blue"}, "", "colour", "Extra inputs"),
    "no_trials": ({"trials": []}, "", "", "at least one of: trials, ladder"),
    "empty_ladder": ({"trials": [], "ladder": []}, "", "", "at least one of"),
    "duplicate_name": ({"trials": [{"name": "a"}, {"name": "a"}]}, "", "trials", "duplicate trial name"),
    "misspelt_trial_key": ({"trials": [{"name": "a", "overides": {}}]}, "", "trials[0].overides", "Extra inputs"),
    "repeated_seed": ({"seeds": [1, 1]}, "", "seeds", "distinct"),
    "val_interval": ({"budget": {"iters": 4, "val_interval": 8}}, "", "budget", "exceeds iters"),
    "bad_dotted_path": ({"trials": [{"name": "a", "overrides": {"model.decode_head.dropout": 0.2}}]}, "",
                        "trials[0].overrides.model.decode_head.dropout", "'+'"),
    "missing_data": ({"data": {"root": "/no/such/data"}}, "", "data.root", "not found"),
    "missing_base": ({"base": "configs/none.py"}, "", "base", "not found"),
    "unknown_trick": ({"trials": [], "ladder": ["poly_lr", "dropout"]}, "", "ladder[1]", "unknown trick 'dropout'"),
    "misspelt_trick_param": ({"trials": [], "ladder": [{"ohem": {"treshold": 0.5}}]}, "", "ladder[0].ohem.treshold",
                             "Extra inputs"),
    "transfer_from_nowhere": ({"trials": [], "ladder": [{"transfer": {"from": "nowhere"}}]}, "",
                              "ladder[0].transfer.from", "no pretrain entry"),
    "missing_checkpoint": ({"trials": [], "ladder": [{"transfer": {"checkpoint": "/no/such.pth"}}]}, "",
                           "ladder[0].transfer.checkpoint", "not found"),
    "leave_one_out_without_recipe": ({"trials": [], "mode": "leave_one_out"}, "", "", "needs a non-empty 'recipe'"),
    "circular_pretrain": ({"trials": [], "ladder": ["poly_lr"], "pretrain": PRETRAIN_CYCLE}, "", "pretrain[0].tricks",
                          "circular dependency: a -> b -> a"),
    "python_tag": ({}, "description: !!python/object/apply:os.system ['touch pwned']\n", None, "invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_study_names_the_field_and_the_cli_writes_nothing(
        case: str, tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader names the field; `ablate run` prints it as one line, exits 2 and writes nothing
    (no store, no runs folder, and a YAML python tag never executed)."""
    sections, raw, field, fragment = MALFORMED[case]
    path = write_study(tmp_path / f"{case}.yaml", tiny_data, **sections)
    path.write_text(path.read_text() + raw)
    problems = _problems(path)
    if field is None:
        assert any(fragment in msg for msg in problems.values()), problems
    else:
        assert field in problems, problems
        assert fragment in problems[field]
    monkeypatch.chdir(tmp_path)  # a stray default path would show up here
    with pytest.raises(SystemExit) as info:
        main(["run", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
              "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert fragment in err and (not field or f"{field}:" in err), err
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "runs").exists() and not (tmp_path / "pwned").exists()


def test_unknown_override_key_suggests_the_close_one(tmp_path: Path, tiny_data: Path) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, trials=[{"name": "a", "overrides": {"optim_wrapper.optimizer.lrr": 0.1}}])
    problems = _problems(path)
    msg = problems["trials[0].overrides.optim_wrapper.optimizer.lrr"]
    assert "did you mean 'lr'" in msg and "'+'" in msg


def test_plus_prefix_adds_a_new_key(tmp_path: Path, tiny_data: Path) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, trials=[{"name": "a", "overrides": {"+model.decode_head.sampler": {"type": "OHEMPixelSampler"}}}])
    assert load_study(path).spec.trials[0].overrides


def test_unknown_profile(tmp_path: Path, tiny_data: Path) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, profiles={"demo": {"budget": {"iters": 2}}})
    assert "available: demo" in _problems(path, "fast")["profiles"]
    assert load_study(path, "demo").spec.budget.iters == 2


@pytest.mark.parametrize("body", ["- just\n- a list\n", "name: [unclosed\n"])
def test_cli_exits_2_with_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture, body: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(SystemExit) as info:
        main(["run", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "bad.yaml" in err
    assert not (tmp_path / "m.db").exists() and not Path("runs/tiny").exists()


def test_cli_lists_every_problem(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, budget={"iters": 0, "batch_size": "x"})
    with pytest.raises(SystemExit) as info:
        main(["run", str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "budget.iters:" in err and "budget.batch_size:" in err
