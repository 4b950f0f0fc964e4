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


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ({"budget": {"iters": "many"}}, "budget.iters", "integer"),
        ({"budget": {"iters": 4, "lr": 0.1}}, "budget.lr", "Extra inputs"),
        ({"colour": "blue"}, "colour", "Extra inputs"),
        ({"trials": []}, "", "at least one of: trials, ladder"),
        ({"trials": [{"name": "a"}, {"name": "a"}]}, "trials", "duplicate trial name"),
        ({"trials": [{"name": "a", "overides": {}}]}, "trials[0].overides", "Extra inputs"),
        ({"seeds": [1, 1]}, "seeds", "distinct"),
        ({"budget": {"iters": 4, "val_interval": 8}}, "budget", "exceeds iters"),
    ],
)
def test_schema_errors_name_the_field(tmp_path: Path, tiny_data: Path, extra: dict, field: str, fragment: str) -> None:
    problems = _problems(write_study(tmp_path / "s.yaml", tiny_data, **extra))
    assert field in problems, problems
    assert fragment in problems[field]


def test_unknown_override_key_suggests_the_close_one(tmp_path: Path, tiny_data: Path) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, trials=[{"name": "a", "overrides": {"optim_wrapper.optimizer.lrr": 0.1}}])
    problems = _problems(path)
    msg = problems["trials[0].overrides.optim_wrapper.optimizer.lrr"]
    assert "did you mean 'lr'" in msg and "'+'" in msg


def test_plus_prefix_adds_a_new_key(tmp_path: Path, tiny_data: Path) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, trials=[{"name": "a", "overrides": {"+model.decode_head.sampler": {"type": "OHEMPixelSampler"}}}])
    assert load_study(path).spec.trials[0].overrides


def test_missing_files_are_field_errors(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.yaml", tmp_path / "nowhere")
    assert "not found" in _problems(path)["data.root"]
    path = write_study(tmp_path / "t.yaml", tmp_path, base="configs/none.py")
    assert "not found" in _problems(path)["base"]


def test_unknown_profile(tmp_path: Path, tiny_data: Path) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, profiles={"demo": {"budget": {"iters": 2}}})
    assert "available: demo" in _problems(path, "fast")["profiles"]
    assert load_study(path, "demo").spec.budget.iters == 2


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    problems = _problems(path)
    assert any("invalid YAML" in msg for msg in problems.values())


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
