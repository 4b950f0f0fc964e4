"""Models of the paper that mmseg lacks, registered in mmseg's MODELS on import.

Configs reach them through `custom_imports = dict(imports=[..., "ablate.models"])`.
"""

from ablate.models.baseline import PlainFCNDecoderHead, PlainFCNEncoder

__all__ = ["PlainFCNDecoderHead", "PlainFCNEncoder"]
