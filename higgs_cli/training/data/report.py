"""What preparation kept and dropped: clips, minutes, and every dropped clip with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Dropped:
    """A clip (or a whole file) left out of training, and why."""

    source: str
    reason: str

    def to_dict(self) -> dict:
        return {"source": self.source, "reason": self.reason}


@dataclass
class PrepareReport:
    """The outcome of `prepare_data`: kept clips and seconds, the split, the codec's work, what was dropped.

    `table()` is the dropped clips as (clip, reason) rows, `summary()` one line, `to_dict()` the JSON."""

    kept: int = 0
    seconds: float = 0.0
    train: int = 0
    validation: int = 0
    encoded: int = 0  # clips the codec encoded in this run
    cached: int = 0  # clips whose codes came from the cache
    dropped: list[Dropped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def minutes(self) -> float:
        return self.seconds / 60.0

    def drop(self, source: str, reason: str) -> None:
        self.dropped.append(Dropped(source, reason))

    def table(self) -> list[tuple[str, str]]:
        """One (clip, reason) row per dropped clip, in the order they were met."""
        return [(item.source, item.reason) for item in self.dropped]

    def summary(self) -> str:
        return (f"kept {self.kept} clip(s), {self.minutes:.1f} min ({self.train} train, {self.validation} "
                f"validation); dropped {len(self.dropped)}; codes encoded {self.encoded}, cached {self.cached}")

    def to_dict(self) -> dict:
        return {"kept": self.kept, "seconds": round(self.seconds, 3), "minutes": round(self.minutes, 3),
                "train": self.train, "validation": self.validation, "encoded": self.encoded,
                "cached": self.cached, "dropped": [item.to_dict() for item in self.dropped],
                "warnings": list(self.warnings)}
