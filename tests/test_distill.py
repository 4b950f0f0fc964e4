"""Channel-wise distillation: the loss, the frozen teacher, the trick as a study dependency, its errors."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mlflow import MlflowClient

from ablate.cli import main
from ablate.errors import StudyError
from ablate.losses import ChannelWiseDivergence
from ablate.study import load_study, plan_trials, run_study
from ablate.trial import TrialState
from tests.conftest import B0_CONFIG, REPO, write_study

TEACHER = {"name": "teacher", "config": str(B0_CONFIG), "overrides": {"model.decode_head.channels": 512}}
BUDGET = {"iters": 2, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}


def _direct_cwd(student: torch.Tensor, teacher: torch.Tensor, tau: float, weight: float) -> float:
    """The formula written out channel by channel, in float64."""
    n, c = teacher.shape[:2]
    total = 0.0
    for i in range(n):
        for j in range(c):
            p_t = torch.softmax(teacher[i, j].flatten().double() / tau, dim=0)
            p_s = torch.softmax(student[i, j].flatten().double() / tau, dim=0)
            total += float((p_t * (p_t.log() - p_s.log())).sum())
    return weight * tau**2 * total / (n * c)


@pytest.mark.parametrize(("tau", "weight", "student_hw"), [(4.0, 3.0, (6, 10)), (1.0, 0.5, (6, 10)), (2.0, 3.0, (3, 5))])
def test_cwd_loss_is_the_formula(tau: float, weight: float, student_hw: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 5, 6, 10, generator=gen) * 3
    student = (torch.randn(2, 5, *student_hw, generator=gen) * 3).requires_grad_()
    loss = ChannelWiseDivergence(tau=tau, loss_weight=weight)(student, teacher)
    # a smaller student map is resized (bilinear) to the teacher's positions first
    resized = F.interpolate(student.detach(), size=(6, 10), mode="bilinear", align_corners=False)
    assert float(loss) == pytest.approx(_direct_cwd(resized, teacher, tau, weight), rel=1e-5)
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    same = ChannelWiseDivergence(tau=tau, loss_weight=weight)(teacher.clone(), teacher)
    assert abs(float(same)) < 1e-6


def _b0_config(crop: int = 32):
    from ablate.config import load_base, use_plain_bn

    cfg = load_base(B0_CONFIG)
    use_plain_bn(cfg)
    cfg.model.data_preprocessor["size"] = (crop, crop)
    return cfg


def _batch(seed: int, crop: int = 32) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(crop, crop), ori_shape=(crop, crop)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, crop, crop), generator=gen))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, crop, crop), generator=gen, dtype=torch.uint8) for _ in range(2)]
    return dict(inputs=inputs, data_samples=samples)


def test_teacher_is_frozen_and_outside_the_student(tmp_path: Path) -> None:
    """Train steps move the student, never the teacher; the state dict and the optimizer see the student."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    from ablate.registry import register_all
    from ablate.tricks import TRICKS, DistillParams, TrickContext

    register_all()
    DefaultScope.get_instance("test-distill", scope_name="mmseg")
    cfg = _b0_config()
    teacher_model = copy.deepcopy(cfg.model)
    teacher_model.backbone["embed_dims"] = 48  # wider stages: feature maps need 1x1 adapters
    teacher_model.decode_head["in_channels"] = [48, 96, 240, 384]
    teacher = MODELS.build(copy.deepcopy(teacher_model))
    torch.save({"state_dict": teacher.state_dict()}, tmp_path / "teacher.pth")
    context = TrickContext(iters=2, data_root=tmp_path, model_of=lambda name: teacher_model,
                           checkpoint_of=lambda name: tmp_path / "teacher.pth")
    student_cfg = copy.deepcopy(cfg)
    TRICKS["distill"].apply(student_cfg, DistillParams(teacher="t", features=(1, 2)), context)
    assert student_cfg.model.type == "DistillEncoderDecoder" and "ablate.models" in student_cfg.custom_imports.imports
    model = MODELS.build(student_cfg.model)
    plain = MODELS.build(copy.deepcopy(cfg.model))
    assert model.teacher is None  # built on the first training step, after the teacher trial
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    for step in range(2):
        losses = model.train_step(_batch(step), OptimWrapper(optimizer))
        assert {"distill.loss_cwd", "distill.loss_cwd_feat1", "distill.loss_cwd_feat2"} <= set(losses)
        assert all(math.isfinite(float(losses[k])) and float(losses[k]) > 0 for k in losses if k.startswith("distill."))
    saved = torch.load(tmp_path / "teacher.pth")["state_dict"]
    loaded = model.teacher.state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)  # BN running stats included
    assert not model.teacher.training and not any(p.requires_grad for p in model.teacher.parameters())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # the student did learn
    keys = set(model.state_dict())
    assert not any(k.startswith("teacher") for k in keys)
    assert {k for k in keys if not k.startswith("distill_adapters.")} == set(plain.state_dict())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in model.teacher.parameters()}
    model.train()
    assert not model.teacher.training


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path):
    """A zoo teacher, then the student alone (r0-base) and with CWD (r1-distill): real Runner, real MLflow."""
    tmp = tmp_path_factory.mktemp("distill")
    path = write_study(tmp / "s.yaml", tiny_data, trials=[], zoo=[TEACHER], budget=BUDGET,
                       ladder=[{"distill": {"teacher": "teacher"}}])
    study = load_study(path)
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    outcome = run_study(study, uri, runs_dir=tmp / "runs")
    return study, uri, outcome, tmp


def test_teacher_trains_first_and_its_id_is_part_of_the_students(distilled) -> None:
    study, uri, outcome, tmp = distilled
    assert [r.state for r in outcome.results] == [TrialState.FINISHED] * 3, [r.error for r in outcome.results]
    client = MlflowClient(uri)
    runs = {r.name: client.get_run(r.run_id) for r in outcome.results}
    assert runs["teacher"].info.end_time <= runs["r1-distill"].info.start_time
    trials = {t.name: t for t in plan_trials(study, tmp / "runs")}
    teacher = trials["teacher"]
    assert trials["r1-distill"].depends_on == (teacher.trial_id,) and trials["r0-base"].depends_on == ()
    from mmengine.config import Config

    assert Config.fromstring(trials["r1-distill"].config_text, ".py").model.teacher.checkpoint == str(teacher.best_checkpoint)
    assert teacher.best_checkpoint.exists()
    # another runs folder moves the checkpoint, not the ids; another teacher changes the student's id
    assert {t.trial_id for t in plan_trials(study, tmp / "elsewhere")} == {t.trial_id for t in trials.values()}
    other = {**TEACHER, "overrides": {"model.decode_head.channels": 384}}
    changed = load_study(write_study(tmp / "other.yaml", Path(study.spec.data.root), trials=[], zoo=[other],
                                     budget=BUDGET, ladder=[{"distill": {"teacher": "teacher"}}], seeds=[0, 1]))
    again = plan_trials(changed, tmp / "runs")
    assert [(t.name, t.seed) for t in again][:4] == [("r0-base", 0), ("r0-base", 1), ("teacher", 0), ("teacher", 1)]
    ids = {(t.name, t.seed): t for t in again}
    assert ids["r0-base", 0].trial_id == trials["r0-base"].trial_id
    assert ids["r1-distill", 0].trial_id != trials["r1-distill"].trial_id
    for seed in (0, 1):  # each seed's student learns from the teacher of the same seed
        assert ids["r1-distill", seed].depends_on == (ids["teacher", seed].trial_id,)


def test_cwd_loss_is_logged_and_only_the_student_is_counted(distilled) -> None:
    _, uri, outcome, tmp = distilled
    client = MlflowClient(uri)
    runs = {r.name: client.get_run(r.run_id) for r in outcome.results}
    student, alone, teacher = runs["r1-distill"], runs["r0-base"], runs["teacher"]
    history = client.get_metric_history(student.info.run_id, "distill.loss_cwd")
    assert [m.step for m in history] == [1, 2] and all(m.value > 0 and math.isfinite(m.value) for m in history)
    assert "distill.loss_cwd" not in alone.data.metrics
    for key in ("flops_g", "params_m"):
        assert student.data.metrics[key] == alone.data.metrics[key]
        assert teacher.data.metrics[key] > student.data.metrics[key]
    assert student.data.tags["ablate.teacher"] == "teacher" and "ablate.teacher" not in alone.data.tags
    result = {r.name: r for r in outcome.results}
    saved = torch.load(tmp / "runs" / "tiny" / result["r1-distill"].trial_id / "iter_2.pth", weights_only=False)
    plain = torch.load(tmp / "runs" / "tiny" / result["r0-base"].trial_id / "iter_2.pth", weights_only=False)
    assert set(saved["state_dict"]) == set(plain["state_dict"])


def test_table1_names_the_teacher(distilled) -> None:
    from ablate.report import collect, model_rows

    study, uri, _, _ = distilled
    rows = {r.trial_name: r for r in model_rows(collect(uri, [study.name]))}
    assert rows["r1-distill"].label == "r1-distill (teacher: teacher)"
    assert rows["r0-base"].label == "r0-base" and rows["teacher"].label == "teacher"
    assert rows["r1-distill"].flops_g == rows["r0-base"].flops_g


def test_dumped_config_trains_under_a_plain_runner(distilled) -> None:
    """The student's config.py alone (custom_imports, no ablate driver) trains with the teacher."""
    _, _, outcome, tmp = distilled
    student = next(r for r in outcome.results if r.name == "r1-distill")
    config = tmp / "runs" / "tiny" / student.trial_id / "config.py"
    script = (
        "import sys\n"
        "from mmengine.config import Config\n"
        "from mmengine.runner import Runner\n"
        "cfg = Config.fromfile(sys.argv[1])\n"
        "cfg.work_dir = sys.argv[2]\n"
        "cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1, val_interval=10)\n"
        "runner = Runner.from_cfg(cfg)\n"
        "runner.train()\n"
        "print('teacher loaded:', runner.model.teacher is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(config), str(tmp / "plain")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "teacher loaded: True" in done.stdout
    logs = "".join(p.read_text() for p in (tmp / "plain").glob("*/*.log"))
    assert "distill.loss_cwd" in logs


def test_distill_applies_with_the_other_tricks_to_the_student_only(tmp_path: Path, tiny_data: Path) -> None:
    """OHEM, class-balanced loss and the auxiliary head change the student; the teacher stays as trained."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    from ablate.registry import register_all
    from ablate.tricks import TRICKS, TrickContext

    register_all()
    DefaultScope.get_instance("test-distill-tricks", scope_name="mmseg")
    cfg = _b0_config()
    teacher_model = copy.deepcopy(cfg.model)
    teacher_model.decode_head["channels"] = 128
    torch.save({"state_dict": MODELS.build(copy.deepcopy(teacher_model)).state_dict()}, tmp_path / "teacher.pth")
    context = TrickContext(iters=2, data_root=tiny_data, crop=(32, 32), model_of=lambda name: teacher_model,
                           checkpoint_of=lambda name: tmp_path / "teacher.pth")
    for name, params in (("distill", {"teacher": "t", "tau": 2.0}), ("ohem", {}), ("class_balanced_loss", {}), ("aux_head", {})):
        TRICKS[name].apply(cfg, TRICKS[name].Params(**params), context)
    assert cfg.model.decode_head.sampler.type == "OHEMPixelSampler"
    assert cfg.model.decode_head.loss_decode.type == "BalancedCrossEntropyLoss" and cfg.model.auxiliary_head
    assert cfg.model.distill_loss == dict(type="ChannelWiseDivergence", tau=2.0, loss_weight=3.0, align_corners=False)
    teacher = cfg.model.teacher.model
    assert "sampler" not in teacher.decode_head and teacher.decode_head.loss_decode.type == "CrossEntropyLoss"
    assert teacher.decode_head.channels == 128 and "auxiliary_head" not in teacher
    model = MODELS.build(cfg.model)
    model.train()
    losses = model.train_step(_batch(0), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))
    assert {"decode.loss_ce", "aux.loss_ce", "distill.loss_cwd"} <= set(losses)
    assert float(losses["loss"]) == pytest.approx(sum(float(v) for k, v in losses.items() if "loss_" in k), rel=1e-5)


def _problems(path: Path) -> dict[str, str]:
    with pytest.raises(StudyError) as info:
        load_study(path)
    return dict(info.value.problems)


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ({"ladder": ["distill"]}, "ladder[0].distill.teacher", "Field required"),
        ({"ladder": [{"distill": {"teacher": "teacher", "tau": 0}}]}, "ladder[0].distill.tau", "greater than 0"),
        ({"ladder": [{"distill": {"teacher": "teacher", "loss_weight": -1}}]}, "ladder[0].distill.loss_weight", "greater than 0"),
        ({"ladder": [{"distill": {"teacher": "nobody"}}]}, "ladder[0].distill.teacher", "no pretrain entry or zoo row named 'nobody'"),
        ({"ladder": [{"distill": {"teacher": "/no/teacher.pth"}}]}, "ladder[0].distill.teacher", "needs `config:`"),
        ({"ladder": [{"distill": {"teacher": "/no/teacher.pth", "config": str(B0_CONFIG)}}]},
         "ladder[0].distill.teacher", "teacher checkpoint '/no/teacher.pth' not found"),
        ({"ladder": [{"distill": {"teacher": "teacher", "config": "/no/config.py"}}]}, "ladder[0].distill.config", "not found"),
        ({"recipe": [{"distill": {"teacher": "teacher"}}]}, "recipe[0].distill.teacher", "would distill from itself"),
        ({"ladder": [{"distill": {"teacher": "teacher", "features": [7]}}]}, "ladder[0].distill.features", "beyond the 4"),
    ],
)
def test_bad_distill_parameters_are_field_errors(tmp_path: Path, tiny_data: Path, extra: dict, field: str, fragment: str) -> None:
    problems = _problems(write_study(tmp_path / "s.yaml", tiny_data, trials=[], zoo=[TEACHER], **extra))
    assert field in problems, problems
    assert fragment in problems[field]


def test_bad_distill_exits_2_naming_the_field(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    pretrain = [{"name": "city", "checkpoint": str(B0_CONFIG)}]  # a file entry: it has no config of its own
    for extra, field in (({"ladder": [{"distill": {"tau": -1.0}}]}, "ladder[0].distill.tau"),
                         ({"ladder": [{"distill": {"teacher": "city"}}], "pretrain": pretrain}, "ladder[0].distill.config")):
        path = write_study(tmp_path / "s.yaml", tiny_data, trials=[], **extra)
        with pytest.raises(SystemExit) as info:
            main(["plan", str(path), "--runs-dir", str(tmp_path / "runs")])
        assert info.value.code == 2
        text = capsys.readouterr().err
        assert field in text and "Traceback" not in text
    assert not (tmp_path / "runs").exists()
