"""The trainable part of RECIPE: knowledge and query heads, the knowledge sentinel, the prompt generator.

    r_k = normalize(MLP_K(f_enc(k)))          knowledge representation   (repr_dim,)
    r_q = normalize(MLP_Q(f_enc(q)))          query representation       (repr_dim,)
    r_Θ = normalize(Θ)                        the knowledge sentinel     (repr_dim,)
    p_k = scale * MLP_P(MLP_K(f_enc(k)))      continuous prompt          (n_prompt_tokens, llm_hidden)

With `read_fact_tokens` (not in the paper) each prompt vector then reads the fact's own tokens, E (T,
llm_hidden): the LLM's input embeddings of the fact's last tokens, with d = distance from the fact's end:
    p_k[i] += softmax_t(W_q p_k[i] . (W_k E[t] + pos[d_t]) / sqrt(read_dim)) E
so a vector can carry an object's own embedding, which the pooled sentence encoding blurs.

Retrieval: k* = argmax_k cos(r_q, r_k); k* is used only when cos(r_q, r_k*) > cos(r_q, r_Θ), so the
sentinel acts as a per-query threshold. `scale` is the standard deviation of the LLM's input embedding
matrix, so fresh prompts start at the size of real token embeddings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from ...atomic import atomic_folder
from .config import EditorConfig

EDITOR_WEIGHTS = "editor.safetensors"
EDITOR_META = "editor.json"


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))


class RecipeEditor(nn.Module):
    """Heads, sentinel and prompt generator for one LLM hidden size and one encoder width."""

    def __init__(self, config: EditorConfig, encoder_dim: int, llm_hidden: int, prompt_scale: float = 1.0,
                 llm_name: str = ""):
        super().__init__()
        self.config = config
        self.encoder_dim = encoder_dim
        self.llm_hidden = llm_hidden
        self.llm_name = llm_name
        self.knowledge_head = _mlp(encoder_dim, config.head_hidden, config.repr_dim)
        self.query_head = _mlp(encoder_dim, config.head_hidden, config.repr_dim)
        self.sentinel = nn.Parameter(torch.randn(config.repr_dim) * 0.02)
        self.prompt_generator = _mlp(config.repr_dim, config.prompt_hidden, config.n_prompt_tokens * llm_hidden)
        if config.read_fact_tokens:
            self.read_query = nn.Linear(llm_hidden, config.read_dim, bias=False)
            self.read_key = nn.Linear(llm_hidden, config.read_dim, bias=False)
            self.read_position = nn.Embedding(config.read_max_tokens, config.read_dim)  # by distance from the end
        self.register_buffer("prompt_scale", torch.tensor(float(prompt_scale)))
        self.calibration: dict | None = None  # the sentinel margin chosen on held-out records (calibration.py)

    # --- representations -------------------------------------------------------------------------
    @property
    def reads_fact_tokens(self) -> bool:
        return self.config.read_fact_tokens

    def keys(self, enc: torch.Tensor) -> torch.Tensor:
        """(N, encoder_dim) -> unit knowledge keys (N, repr_dim), what retrieval compares queries with."""
        return F.normalize(self.knowledge_head(enc), dim=-1)

    def prompts(self, enc: torch.Tensor, fact_tokens: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(N, encoder_dim) -> continuous prompts (N, n_prompt_tokens, llm_hidden). An editor that reads the
        fact's tokens needs `fact_tokens`: (embeddings (N, T, llm_hidden), mask (N, T)), right-aligned (the
        fact's last token at T-1), as `prompting.fact_token_embeddings` gives them."""
        return self._prompts(self.knowledge_head(enc), fact_tokens)

    def _prompts(self, raw: torch.Tensor, fact_tokens: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """`prompts` from the knowledge head's output `raw` (N, repr_dim), which `knowledge` shares with the keys."""
        prompts = (self.prompt_generator(raw) * self.prompt_scale).view(raw.shape[0], self.config.n_prompt_tokens,
                                                                         self.llm_hidden)
        if not self.config.read_fact_tokens:
            return prompts
        if fact_tokens is None:
            raise ValueError("this RECIPE editor reads the fact's tokens (read_fact_tokens): pass fact_tokens")
        embeds, mask = fact_tokens
        if embeds.shape[0] != raw.shape[0] or embeds.shape[:2] != mask.shape or embeds.shape[-1] != self.llm_hidden:
            raise ValueError(f"fact_tokens: embeddings {tuple(embeds.shape)} and mask {tuple(mask.shape)} do not "
                             f"fit {raw.shape[0]} facts of hidden size {self.llm_hidden}")
        t = embeds.shape[1]
        if t > self.config.read_max_tokens:
            raise ValueError(f"fact_tokens: {t} tokens, more than read_max_tokens {self.config.read_max_tokens}")
        embeds = embeds.to(prompts.dtype)
        distance = torch.arange(t - 1, -1, -1, device=embeds.device)  # right-aligned: the last token is 0
        keys = self.read_key(embeds) + self.read_position(distance)  # (N, T, d)
        scores = self.read_query(prompts) @ keys.transpose(1, 2) / self.config.read_dim ** 0.5  # (N, n, T)
        scores = scores.masked_fill(~mask.bool()[:, None, :], float("-inf"))
        return prompts + torch.softmax(scores, dim=-1) @ embeds

    def knowledge(self, enc: torch.Tensor, fact_tokens: tuple[torch.Tensor, torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, encoder_dim) -> (unit keys (N, repr_dim), prompts (N, n_prompt_tokens, llm_hidden))."""
        raw = self.knowledge_head(enc)  # one pass for both
        return F.normalize(raw, dim=-1), self._prompts(raw, fact_tokens)

    def query(self, enc: torch.Tensor) -> torch.Tensor:
        """(N, encoder_dim) -> unit query representations (N, repr_dim)."""
        return F.normalize(self.query_head(enc), dim=-1)

    def sentinel_repr(self) -> torch.Tensor:
        """The knowledge sentinel as a unit vector (repr_dim,)."""
        return F.normalize(self.sentinel, dim=-1)

    # --- persistence -----------------------------------------------------------------------------
    def meta(self) -> dict:
        config = asdict(self.config)
        if not self.config.read_fact_tokens:  # so editors from before the option keep their architecture digest
            for name in ("read_fact_tokens", *EditorConfig.READ_FIELDS):
                config.pop(name)
        return {"config": config, "encoder_dim": self.encoder_dim, "llm_hidden": self.llm_hidden,
                "llm_name": self.llm_name}

    def digest(self) -> str:
        """SHA-256 of the architecture and every weight: a repository records the digest of the editor that
        built its keys and prompts, and refuses to load under another one."""
        h = hashlib.sha256(json.dumps(self.meta(), sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def save(self, folder: Path, extra: dict | None = None) -> None:
        """Write weights and metadata to `folder` atomically (a temporary folder, then a rename); the
        sentinel calibration (`calibration`, set by calibration.py) goes into the metadata with them."""
        folder = Path(folder)
        extra = {**({"calibration": self.calibration} if self.calibration else {}), **(extra or {})}
        with atomic_folder(folder) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, tmp / EDITOR_WEIGHTS)
            (tmp / EDITOR_META).write_text(json.dumps({**self.meta(), **extra}, indent=2))

    @property
    def sentinel_margin(self) -> float:
        """The calibrated margin of the sentinel rule (0, the paper's rule, for an editor never calibrated).
        With a `sentinel_schedule`, the margin of its largest size; `Recipe` follows the schedule instead."""
        return float(self.calibration.get("sentinel_margin", 0.0)) if self.calibration else 0.0

    @property
    def sentinel_schedule(self) -> list[dict] | None:
        """The margins calibrated at several repository sizes (`calibration.calibrate_sentinel(sizes=...)`:
        [{"stored": N, "sentinel_margin": m, ...}] by N, for `calibration.margin_at`), or None."""
        return (self.calibration or {}).get("schedule") or None

    @classmethod
    def require(cls, folder: Path) -> None:
        """FileNotFoundError saying how to train one when `folder` holds no trained editor."""
        folder = Path(folder)
        if not (folder / EDITOR_META).is_file() or not (folder / EDITOR_WEIGHTS).is_file():
            raise FileNotFoundError(
                f"no trained RECIPE editor in {folder} (expected {EDITOR_META} and {EDITOR_WEIGHTS}); "
                f"train one with `selfparam recipe train --out DIR`, which writes DIR/editor"
                + (f" (here: --out {folder.parent})" if folder.name == "editor" else ""))

    @classmethod
    def load(cls, folder: Path, device: str | torch.device = "cpu") -> "RecipeEditor":
        folder = Path(folder)
        cls.require(folder)
        meta = json.loads((folder / EDITOR_META).read_text())
        editor = cls(EditorConfig(**meta["config"]), meta["encoder_dim"], meta["llm_hidden"],
                     llm_name=meta.get("llm_name", ""))
        editor.load_state_dict(load_file(folder / EDITOR_WEIGHTS), strict=True)
        editor.calibration = meta.get("calibration")
        return editor.to(device).eval()
