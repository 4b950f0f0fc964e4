"""ablate: declarative ablation studies for MMSegmentation, tracked in MLflow.

Importing the package makes mmseg importable on mmcv-lite (see `ablate.compat`); that step is
cheap and does nothing when a full mmcv with compiled ops is installed.
"""

from ablate.compat.mmcv_ops import install_mmcv_ops as _install_mmcv_ops
from ablate.errors import AblateError, ConfigError, DataError, StudyError, TrialError

_install_mmcv_ops()

__version__ = "0.1.0"
__all__ = ["AblateError", "ConfigError", "DataError", "StudyError", "TrialError", "__version__"]
