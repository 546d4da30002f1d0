"""The audio tokenizer: 24 kHz mono audio <-> 8 codebooks at 25 frames/s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from higgs_cli.engine.checkpoint import fingerprint_folder
from higgs_cli.engine.model.snake import use_in_place_snakes
from higgs_cli.engine.request import SAMPLE_RATE


class AudioCodec:
    """Wraps transformers' HiggsAudioV2TokenizerModel and its feature extractor."""

    def __init__(self, model, feature_extractor, device: torch.device, fingerprint: str) -> None:
        self.model = model.eval()
        use_in_place_snakes(self.model)  # the same samples, 18% faster decodes (engine/model/snake.py)
        self.feature_extractor = feature_extractor
        self.device = device
        self.fingerprint = fingerprint
        self.hop_length = int(model.config.hop_length)
        self.num_codebooks = int(model.config.num_quantizers)
        self.frame_rate = int(model.config.frame_rate)

    @classmethod
    def load(cls, folder: Path, model_dir: Path, device: torch.device) -> AudioCodec:
        from transformers import DacFeatureExtractor, HiggsAudioV2TokenizerModel

        model = HiggsAudioV2TokenizerModel.from_pretrained(folder, dtype=torch.float32,
                                                           use_safetensors=True).to(device)
        try:
            features = DacFeatureExtractor.from_pretrained(model_dir)
        except OSError:
            features = DacFeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE,
                                           hop_length=model.config.hop_length)
        return cls(model, features, device, fingerprint_folder(folder))

    @torch.inference_mode()
    def encode(self, audio: np.ndarray) -> np.ndarray:
        """24 kHz mono float audio -> (codebooks, frames) int64 codes."""
        inputs = self.feature_extractor(np.asarray(audio, dtype=np.float32), sampling_rate=SAMPLE_RATE,
                                        return_tensors="pt")
        values = inputs["input_values"].to(self.device)
        codes = self.model.encode(values, return_dict=True).audio_codes
        return codes[0].cpu().numpy().astype(np.int64)

    @torch.inference_mode()
    def encode_batch(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """Encode several clips of the same length in one pass (no padding: the same codes as alone)."""
        if len({len(audio) for audio in batch}) > 1:
            raise ValueError("encode_batch needs clips of one length")
        inputs = self.feature_extractor([np.asarray(a, dtype=np.float32) for a in batch], sampling_rate=SAMPLE_RATE,
                                        return_tensors="pt")
        codes = self.model.encode(inputs["input_values"].to(self.device), return_dict=True).audio_codes
        return [row.cpu().numpy().astype(np.int64) for row in codes]

    @torch.inference_mode()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(codebooks, frames) codes -> 24 kHz mono float32 audio."""
        if codes.shape[1] == 0:
            return np.zeros(0, dtype=np.float32)
        tensor = torch.as_tensor(codes, dtype=torch.long, device=self.device)[None]
        audio = self.model.decode(tensor, return_dict=True).audio_values
        return audio[0, 0].float().cpu().numpy()

    @torch.inference_mode()
    def decode_batch(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """Decode several code sequences in one pass; each result is cut to its own length.

        Rows are right-padded by repeating their last frame; the decoder is
        not causal, so the last ~10 frames (0.4 s) of a padded row may differ
        slightly (about 1e-3) from decoding it alone.
        """
        lengths = [c.shape[1] for c in batch]
        longest = max(lengths, default=0)
        if longest == 0:
            return [np.zeros(0, dtype=np.float32) for _ in batch]
        padded = np.stack([np.pad(c, ((0, 0), (0, longest - c.shape[1])), mode="edge") if c.shape[1] else
                           np.zeros((self.num_codebooks, longest), dtype=np.int64) for c in batch])
        audio = self.model.decode(torch.as_tensor(padded, device=self.device), return_dict=True).audio_values
        samples_per_frame = audio.shape[-1] // longest
        return [audio[i, 0, :n * samples_per_frame].float().cpu().numpy() for i, n in enumerate(lengths)]
