"""Models of the paper that mmseg lacks, registered in mmseg's MODELS on import.

Configs reach them through `custom_imports = dict(imports=[..., "ablate.models"])`.
"""

from ablate.models.baseline import PlainFCNDecoderHead, PlainFCNEncoder
from ablate.models.distiller import DistillEncoderDecoder, load_teacher

__all__ = ["DistillEncoderDecoder", "PlainFCNDecoderHead", "PlainFCNEncoder", "load_teacher"]
