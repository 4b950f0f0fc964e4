"""ablate: declarative ablation studies for MMSegmentation, tracked in MLflow.

Importing the package makes mmseg importable on mmcv-lite (see `ablate.compat`); that step is
cheap and does nothing when a full mmcv with compiled ops is installed.
"""

import os as _os

# Nothing leaves this machine unasked: MLflow 3 and Ray would otherwise report usage to their
# vendors. Set before any worker starts, so Ray workers inherit it; an explicit setting wins.
for _key, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
}.items():
    _os.environ.setdefault(_key, _value)
# MLflow prints "View run ... at: http://..." to stdout whenever a run ends on a tracking server,
# which would break `ablate run --json` output; the URIs are in ablate's own output anyway.
_os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

from ablate.compat.mmcv_ops import install_mmcv_ops as _install_mmcv_ops  # noqa: E402
from ablate.errors import AblateError, ConfigError, DataError, StudyError  # noqa: E402

_install_mmcv_ops()

__version__ = "0.1.0"
__all__ = ["AblateError", "ConfigError", "DataError", "StudyError", "__version__"]
