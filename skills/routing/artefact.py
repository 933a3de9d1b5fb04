"""Versioned router artefact: one uncompressed .npz of arrays plus JSON metadata, never pickle."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import Calibration
from .cascade import Cascade
from .classifier import LinearModel
from .lexical import LexicalModel

if TYPE_CHECKING:
    from .router import Router

FORMAT = "dtbot-router"
FORMAT_VERSION = 1


class ArtefactError(ValueError):
    """The file is not a router artefact this code can read."""


def save(router: Router, path: Path) -> Path:
    """Write atomically (temp file + rename), so a worker never reads half an artefact."""
    arrays: dict[str, np.ndarray] = {
        "linear_weights": router.linear.weights.astype(np.float32),
        "linear_bias": router.linear.bias.astype(np.float32),
        **router.lexical.to_arrays(),
        **(router.cascade.to_arrays() if router.cascade is not None else {}),
    }
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    created = datetime.now(UTC)
    meta: dict[str, Any] = {
        **{k: v for k, v in router.meta.items() if k not in ("version", "created_at")},
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        # Microseconds: the same examples trained twice within a second are still two versions.
        "version": f"{created:%Y%m%dT%H%M%S%fZ}-{digest.hexdigest()[:12]}",
        "created_at": created.isoformat(),
        "labels": router.labels,
        "embedders": router.embedder_names,
        "calibration": router.calibration.to_dict(),
        # Absent (older artefacts, or no cheap+expensive pair): the full model answers every message.
        "stage1": router.cascade.to_meta() if router.cascade is not None else None,
    }
    arrays["meta_json"] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    router.meta.update(version=meta["version"], created_at=meta["created_at"])
    return path


def read_meta(path: Path) -> dict[str, Any]:
    """Only the metadata (cheap): lets a worker see whether a newer version is on disk."""
    with np.load(path, allow_pickle=False) as z:
        return _meta(z)


def _meta(z: Any) -> dict[str, Any]:
    if "meta_json" not in z.files:
        raise ArtefactError("not a router artefact (no metadata)")
    meta = json.loads(z["meta_json"].tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT:
        raise ArtefactError(f"not a router artefact (format {meta.get('format')!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ArtefactError(f"artefact format {meta['format_version']} is newer than this code ({FORMAT_VERSION})")
    return meta


def load(path: Path) -> Router:
    from .router import Router

    try:
        with np.load(path, allow_pickle=False) as z:
            meta = _meta(z)
            arrays = {k: z[k] for k in z.files if k != "meta_json"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ArtefactError):
            raise
        raise ArtefactError(f"cannot read router artefact {path}: {exc}") from exc
    labels = list(meta["labels"])
    linear = LinearModel(weights=arrays["linear_weights"], bias=arrays["linear_bias"])
    if linear.weights.shape[1] != len(labels):
        raise ArtefactError("artefact weights do not match its labels")
    try:
        stage1 = Cascade.from_artefact(meta["stage1"], arrays) if meta.get("stage1") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtefactError(f"artefact stage-1 head is incomplete: {exc}") from exc
    if stage1 is not None and stage1.linear.weights.shape[1] != len(labels):
        raise ArtefactError("artefact stage-1 weights do not match its labels")
    return Router(
        labels=labels,
        embedder_names=list(meta["embedders"]),
        linear=linear,
        lexical=LexicalModel.from_arrays(arrays),
        calibration=Calibration.from_dict(meta["calibration"]),
        meta=meta,
        cascade=stage1,
    )
