"""A training run's settings: one source for their defaults and ranges (the CLI, the manifest and the
trainer read them here). No torch: any layer may import this module."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from higgs_cli.engine.request import Range
from higgs_cli.errors import UsageError

ATTENTION = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
AUDIO_FFN = ("audio_mlp.gate_proj", "audio_mlp.up_proj", "audio_mlp.down_proj")
TEXT_FFN = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
AUDIO_HEAD = ("audio_lm_head",)
DEFAULT_TARGETS = ATTENTION + AUDIO_FFN
TARGETS = DEFAULT_TARGETS + TEXT_FFN + AUDIO_HEAD
"""The modules LoRA may wrap, as suffixes of their names in transformers' model (peft matches a name's
end at a dot, so `mlp.gate_proj` is the text FFN's and never the audio FFN's)."""
TARGET_GROUPS = {"attention": ATTENTION, "audio-ffn": AUDIO_FFN, "text-ffn": TEXT_FFN, "audio-head": AUDIO_HEAD}


@dataclass(frozen=True)
class TrainSettings:
    """What a run does. `batch_size` rows make one optimizer step, `micro_batch` of them one forward
    pass (the rest is gradient accumulation); the learning rate warms up linearly for `warmup_steps`,
    then decays along a cosine to `min_lr_ratio` of itself at `steps`."""

    steps: int = 300
    learning_rate: float = 2e-4
    batch_size: int = 8
    micro_batch: int = 8
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    targets: tuple[str, ...] = DEFAULT_TARGETS
    eval_every: int = 25
    patience: int = 4  # evaluations without a better validation loss before stopping; 0: never stop early
    checkpoint_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        problems = [f"{name} must be {rule.describe()} (got {getattr(self, name)!r})"
                    for name, rule in RANGES.items() if not rule.allows(getattr(self, name))]
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or not self.targets:
            problems.append(f"unknown LoRA targets {', '.join(unknown) or '(none given)'}: choose from "
                            f"{', '.join(TARGETS)} or the groups {', '.join(TARGET_GROUPS)}")
        if problems:
            raise UsageError("; ".join(problems), hint="see `higgs voice train --help` and docs/training.md")

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def to_dict(self) -> dict:
        return {**asdict(self), "targets": list(self.targets)}

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if k == "targets" else v for k, v in data.items() if k in known})


RANGES: dict[str, Range] = {
    "steps": Range(1, 1_000_000, integer=True),
    "learning_rate": Range(0, 1, low_open=True),
    "batch_size": Range(1, 4096, integer=True),
    "micro_batch": Range(1, 4096, integer=True),
    "warmup_steps": Range(0, 1_000_000, integer=True),
    "min_lr_ratio": Range(0, 1),
    "weight_decay": Range(0, 1),
    "max_grad_norm": Range(0, None, low_open=True),
    "rank": Range(1, 1024, integer=True),
    "alpha": Range(0, 100_000, low_open=True),
    "dropout": Range(0, 0.9),
    "eval_every": Range(1, 1_000_000, integer=True),
    "patience": Range(0, 1_000_000, integer=True),
    "checkpoint_every": Range(1, 1_000_000, integer=True),
    "seed": Range(0, 2**32 - 1, integer=True),
}


def expand_targets(names: list[str]) -> tuple[str, ...]:
    """Targets as a user gives them: module suffixes or group names (`attention`, `audio-ffn`, ...)."""
    out: list[str] = []
    for name in names:
        for target in TARGET_GROUPS.get(name, (name,)):
            if target not in out:
                out.append(target)
    return tuple(out)


def learning_rate_at(settings: TrainSettings, step: int) -> float:
    """The learning rate of optimizer step `step` (0-based): linear warm-up, then cosine decay. A
    function of the step alone, so a resumed run follows the same schedule with nothing to restore."""
    peak = settings.learning_rate
    if step < settings.warmup_steps:
        return peak * (step + 1) / settings.warmup_steps
    span = max(1, settings.steps - settings.warmup_steps)
    progress = min(1.0, (step - settings.warmup_steps) / span)
    floor = settings.min_lr_ratio
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
