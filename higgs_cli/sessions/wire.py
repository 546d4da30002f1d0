"""The native protocol's data: arrays and generation requests as JSON, for the client and the server.

Arrays travel as `{"dtype", "shape", "b64"}` (little-endian raw bytes, base64),
so codes and float32 audio arrive bit for bit: output through a server equals
an in-process run. Torch-free and Starlette-free (the client imports it).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass

import numpy as np

from higgs_cli.engine.request import NUM_CODEBOOKS, SAMPLING_RANGES, GenerationRequest, Sampling, Turn

DTYPES = {"int16": "<i2", "int64": "<i8", "float32": "<f4"}
CODE_LIMIT = 1026  # codes are 0..1023, plus stream BOS/EOS


class WireError(ValueError):
    """A malformed field: `field` names it (a.b[2].c), the message says what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def pack(array: np.ndarray, dtype: str) -> dict:
    data = np.ascontiguousarray(array, dtype=DTYPES[dtype])
    return {"dtype": dtype, "shape": list(data.shape), "b64": base64.b64encode(data.tobytes()).decode("ascii")}


def unpack(value, field: str, *, dtypes: tuple[str, ...], max_items: int) -> np.ndarray:
    """An array from its JSON form, checked: a known dtype, a shape matching the bytes, a size cap."""
    if not isinstance(value, dict) or not {"dtype", "shape", "b64"} <= value.keys():
        raise WireError(field, 'expected {"dtype", "shape", "b64"}')
    dtype, shape = value["dtype"], value["shape"]
    if dtype not in dtypes:
        raise WireError(field, f"dtype must be one of {', '.join(dtypes)}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                              for n in shape) or len(shape) > 2:
        raise WireError(field, "shape must be a list of at most 2 non-negative integers")
    count = math.prod(shape)
    if count > max_items:
        raise WireError(field, f"{count} values is more than the {max_items} allowed")
    if not isinstance(value["b64"], str) or len(value["b64"]) > 4 * (count * 8 // 3 + 4):
        raise WireError(field, "b64 must be a base64 string of the array's bytes")
    try:
        raw = base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise WireError(field, "b64 is not valid base64") from None
    item = np.dtype(DTYPES[dtype]).itemsize
    if len(raw) != count * item:
        raise WireError(field, f"{len(raw)} bytes do not make an array of shape {shape} ({dtype})")
    return np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape).copy()


def codes_from(value, field: str, *, max_frames: int) -> np.ndarray:
    codes = unpack(value, field, dtypes=("int16", "int64"), max_items=NUM_CODEBOOKS * max_frames).astype(np.int64)
    if codes.ndim != 2 or codes.shape[0] != NUM_CODEBOOKS:
        raise WireError(field, f"codes must be {NUM_CODEBOOKS} x frames")
    if codes.size and (codes.min() < 0 or codes.max() >= CODE_LIMIT):
        raise WireError(field, f"codes must be in 0..{CODE_LIMIT - 1}")
    return codes


def audio_from(value, field: str, *, max_samples: int) -> np.ndarray:
    audio = unpack(value, field, dtypes=("float32",), max_items=max_samples)
    if audio.ndim != 1 or not np.isfinite(audio).all():
        raise WireError(field, "audio must be 1-D float32 samples (24 kHz mono) without NaN or infinity")
    return audio


def request_to_json(request: GenerationRequest) -> dict:
    if request.adapter is not None:  # a server reads no adapter files a client names
        from higgs_cli.errors import UsageError

        raise UsageError("a voice with a trained adapter cannot be spoken through a server yet",
                         hint="generate here with --no-server, or use the voice without its adapter")
    history = [{"text": turn.text,
                "codes": pack(turn.codes, "int16") if turn.codes is not None else None,
                "audio": pack(turn.audio, "float32") if turn.codes is None else None} for turn in request.history]
    return {"text": request.text, "history": history, "scene": request.scene, "system": request.system,
            "sampling": request.sampling.to_dict(), "seed": request.seed, "max_frames": request.max_frames}


@dataclass(frozen=True)
class JobLimits:
    max_chars: int
    max_frames: int  # generated frames
    max_history: int
    max_turn_frames: int
    max_turn_samples: int


def _text(value, field: str, max_chars: int, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise WireError(field, "must be a string")
    if not empty_ok and not value.strip():
        raise WireError(field, "is empty: give words to speak")
    if len(value) > max_chars:
        raise WireError(field, f"is {len(value)} characters; at most {max_chars}")
    return value


def number(value, field: str, key: str):
    """A sampling or length setting within its `SAMPLING_RANGES` rule."""
    rule = SAMPLING_RANGES[key]
    if isinstance(value, bool) or (value is not None and not isinstance(value, (int, float))):
        raise WireError(field, f"must be {rule.describe()}")
    if not rule.allows(value):
        raise WireError(field, f"must be {rule.describe()}, got {value}")
    return int(value) if rule.integer and value is not None else value


def sampling_from(value, field: str) -> Sampling:
    if not isinstance(value, dict):
        raise WireError(field, "must be an object")
    unknown = set(value) - set(Sampling().to_dict())
    if unknown:
        raise WireError(field, f"unknown settings {sorted(unknown)}")
    settings = {key: number(item, f"{field}.{key}", key) for key, item in value.items()}
    return Sampling(**settings)


def request_from_json(value, field: str, limits: JobLimits) -> GenerationRequest:
    """A checked GenerationRequest from a native job; WireError names the bad field."""
    if not isinstance(value, dict):
        raise WireError(field, "a job must be an object")
    known = {"text", "history", "scene", "system", "sampling", "seed", "max_frames"}
    if set(value) - known:
        raise WireError(field, f"unknown fields {sorted(set(value) - known)}")
    text = _text(value.get("text"), f"{field}.text", limits.max_chars)
    history = value.get("history") or []
    if not isinstance(history, list) or len(history) > limits.max_history:
        raise WireError(f"{field}.history", f"must be a list of at most {limits.max_history} turns")
    turns = []
    for i, turn in enumerate(history):
        where = f"{field}.history[{i}]"
        if not isinstance(turn, dict):
            raise WireError(where, "must be an object")
        turn_text = _text(turn.get("text"), f"{where}.text", limits.max_chars, empty_ok=True)
        if turn.get("codes") is not None:
            turns.append(Turn(turn_text, codes=codes_from(turn["codes"], f"{where}.codes",
                                                          max_frames=limits.max_turn_frames)))
        elif turn.get("audio") is not None:
            turns.append(Turn(turn_text, audio=audio_from(turn["audio"], f"{where}.audio",
                                                          max_samples=limits.max_turn_samples)))
        else:
            raise WireError(where, "needs codes or audio")
    scene = value.get("scene")
    if scene is not None:
        scene = _text(scene, f"{field}.scene", limits.max_chars, empty_ok=True)
    system = _text(value.get("system", GenerationRequest.system), f"{field}.system", limits.max_chars)
    max_frames = value.get("max_frames", 750)
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or not 1 <= max_frames <= limits.max_frames:
        raise WireError(f"{field}.max_frames", f"must be a whole number from 1 to {limits.max_frames}")
    return GenerationRequest(text=text, history=tuple(turns), scene=scene, system=system,
                             sampling=sampling_from(value.get("sampling", {}), f"{field}.sampling"),
                             seed=number(value.get("seed", 0), f"{field}.seed", "seed"), max_frames=max_frames)
