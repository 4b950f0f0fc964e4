"""The dataset a trial read, as an MLflow dataset input.

MLflow shows dataset inputs on the run page and keeps them apart from params; the digest is
ablate's content fingerprint (the same one that keys trial ids), so two runs that show the same
digest trained on byte-identical images and labels, wherever the folder lay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablate.tracking import tags as T

CONTEXT = "train"  # the `mlflow.data.context` of the dataset a trial trains and validates on


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset input read back: what `ablate diff` compares."""

    name: str
    digest: str
    source: str
    splits: dict[str, int] = field(default_factory=dict)

    def flat(self) -> dict[str, str]:
        out = {"name": self.name, "digest": self.digest, "source": self.source}
        out.update({f"split.{k}": str(v) for k, v in sorted(self.splits.items())})
        return out


def split_sizes(root: Path) -> dict[str, int]:
    """Images per split folder (`img_dir/<split>/*.png`)."""
    from ablate.data.layout import IMG_DIR, SPLITS

    return {split: sum(1 for _ in (root / IMG_DIR / split).glob("*.png")) for split in SPLITS}


def dataset_input(root: Path, fingerprint: str, splits: Mapping[str, int] | None = None) -> Any:
    """An `mlflow.entities.DatasetInput`: name = the folder's name, digest = the fingerprint,
    source = the absolute folder, profile = the split sizes."""
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset, DatasetInput, InputTag

    root = Path(root).resolve()
    source = get_dataset_source_from_json(json.dumps({"uri": str(root)}), "local")
    # mlflow marks `Dataset.profile` abstract without ABCMeta; MetaDataset is concrete at runtime
    fields = MetaDataset(source, name=root.name, digest=fingerprint).to_dict()  # type: ignore[abstract]
    sizes = {k: int(v) for k, v in splits.items() if k in ("train", "val")} if splits else split_sizes(root)
    entity = Dataset(**fields, profile=json.dumps(sizes))
    return DatasetInput(entity, tags=[InputTag(T.DATASET_CONTEXT, CONTEXT)])


def _source_uri(text: str) -> str:
    try:
        return str(json.loads(text).get("uri", text))
    except (TypeError, ValueError, AttributeError):
        return text


def _splits(text: str | None) -> dict[str, int]:
    try:
        return {str(k): int(v) for k, v in json.loads(text or "{}").items()}
    except (TypeError, ValueError, AttributeError):
        return {}


def datasets_of(run: Any) -> list[DatasetRecord]:
    """The dataset inputs of an MLflow run, decoded."""
    inputs = getattr(run, "inputs", None)
    out = []
    for item in getattr(inputs, "dataset_inputs", None) or []:
        ds = item.dataset
        out.append(DatasetRecord(ds.name, ds.digest, _source_uri(ds.source), _splits(ds.profile)))
    return out
