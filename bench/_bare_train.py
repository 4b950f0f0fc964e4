"""Train one resolved trial config with nothing but mmengine's Runner: the baseline `ablate` is
compared against (no Ray, no MLflow, no FLOPs count, no predictions).

    python bench/_bare_train.py CONFIG.py WORK_DIR

Prints one JSON line: seconds spent importing, building the Runner, and in `train()` (which
includes the validation the config schedules), each taken inside this process.
"""

from __future__ import annotations

import json
import sys
import time

_T0 = time.perf_counter()


def main(argv: list[str]) -> int:
    config_path, work_dir = argv[0], argv[1]
    from ablate import compat
    from ablate.registry import register_all

    compat.install()
    register_all()
    from mmengine.config import Config
    from mmengine.runner import Runner

    imported = time.perf_counter()
    cfg = Config.fromfile(config_path)
    cfg.work_dir = work_dir
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    built = time.perf_counter()
    runner.train()
    trained = time.perf_counter()
    import torch

    try:  # the last validation's mIoU: equal to ablate's for the same config and seed
        miou = float(runner.message_hub.get_scalar("val/mIoU").current())
    except (KeyError, AttributeError):
        miou = None
    print(json.dumps({
        "mIoU": miou,
        "import_s": round(imported - _T0, 3),
        "build_s": round(built - imported, 3),
        "train_s": round(trained - built, 3),
        "in_process_s": round(trained - _T0, 3),
        "torch_threads": torch.get_num_threads(),
        "device": str(next(runner.model.parameters()).device),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
