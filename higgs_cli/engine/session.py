"""ModelSession: Higgs Audio V2 loaded once, generating batches of requests.

    session = ModelSession.load("bosonai/higgs-audio-v2-generation-3B-base")
    [result] = session.generate([GenerationRequest(text="Hello there.")])

This module imports torch and transformers; import it only when a model is needed.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from higgs_cli.engine import checkpoint
from higgs_cli.engine.api import CODEC_BATCH_SIZE, DEFAULT_BATCH_SIZE
from higgs_cli.engine.checkpoint import fingerprint_folder, resolve_model
from higgs_cli.engine.decode.aot import AotDecodeStep, compiler_warnings_hidden
from higgs_cli.engine.decode.chunks import ChunkDecoder
from higgs_cli.engine.decode.loop import Job, PrefixStore, run_jobs
from higgs_cli.engine.decode.step import Workspaces
from higgs_cli.engine.model.codec import AudioCodec
from higgs_cli.engine.model.delay import generated_codes
from higgs_cli.engine.model.forward import Runner, StaticCache
from higgs_cli.engine.model.placement import (
    check_fits,
    configure_threads,
    cpu_has_bf16,
    pick_device,
    pick_dtype,
    weight_bytes,
)
from higgs_cli.engine.model.prompt import build_prompt
from higgs_cli.engine.request import CHUNK_FRAMES, SAMPLE_RATE, GenerationRequest, GenerationResult
from higgs_cli.errors import ModelError, OutOfMemory, UsageError


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    audio_tokenizer: str
    is_random: bool
    model_id: str
    codec_id: str
    device: str
    dtype: str
    parameters: int

# CPU graphs: weights frozen into constants, inductor's own GEMM kernels where they win
# (their timing tables not printed), and a C++ wrapper (the Python one re-creates hundreds
# of weight views every call).
CPU_COMPILE_SETTINGS = {"cpp_wrapper": True, "freezing": True, "max_autotune": True,
                        "max_autotune_gemm_backends": "CPP,ATEN", "autotune_num_choices_displayed": 0,
                        "max_autotune_report_choices_stats": False}


class ModelSession:
    """One loaded model, audio tokenizer and text tokenizer. Not thread-safe."""

    def __init__(self, name: str, files: checkpoint.CheckpointFiles, model, tokenizer, codec: AudioCodec,
                 device: torch.device, dtype: torch.dtype, compile: bool = False) -> None:
        self.name = name
        self.files = files
        self.model = model
        self.tokenizer = tokenizer
        self.codec = codec
        self.device = device
        self.dtype = dtype
        # column-major weights help MKL's fp32 matrix-vector kernel; oneDNN's bf16 one reads
        # row-major ones faster (10.4 against 13.2 ms for a batch-1 step's products, measured here)
        # packed where it was measured: CPUs with bf16 units (elsewhere bf16 is emulated)
        eager_cpu_bf16 = device.type == "cpu" and dtype == torch.bfloat16 and not compile and cpu_has_bf16()
        self.runner = Runner(model, column_major=not compile and dtype == torch.float32, packed=eager_cpu_bf16)
        self.prefixes = PrefixStore()
        self.adapter_prefixes: dict[str, PrefixStore] = {}  # a voice adapter's digest -> its prompts' keys/values
        self.model_id = fingerprint_folder(files.model_dir)
        self.num_codebooks = model.config.num_codebooks
        self.compiled_decode = self._compile_decode() if compile else None
        # on a GPU the decode loop captures the whole step (forward, sampling, bookkeeping)
        # in a CUDA graph, over a cache and slot table kept between calls of one shape
        self.graphs = compile and device.type == "cuda"
        self.workspaces = Workspaces()

    def _compile_decode(self):
        """The decode step under torch.compile.

        On GPU: inductor kernels with static shapes; the decode loop records the whole
        step (this forward, sampling, bookkeeping) in one CUDA graph per batch and cache shape.
        On CPU, batch 1: compiled ahead of time (`aot.AotDecodeStep`, cached on
        disk), every product with a weight a multiply-and-sum loop that streams it
        at about memory bandwidth (`forward.streams_one_row`), reading the model's
        own weights. Other batches: torch.compile with weights frozen into the
        graph and inductor's own matrix kernels on packed weights (MKL's fp32
        matrix-vector path reads far below bandwidth on some CPUs). A graph with
        packed weights holds its own copy of them, so the shapes are dynamic: one
        graph for every batch and cache size.
        """
        from torch._inductor import config as inductor_config

        on_gpu = self.device.type == "cuda"
        if not on_gpu:  # a CUDA build of torch without a GPU says so when inductor builds C++ code
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        # on GPU no cudagraphs here: the decode loop records the whole step, sampling included
        step = torch.compile(self.runner.decode_step, dynamic=not on_gpu)
        # Compilation happens on a call (the first, and each new graph), so the
        # settings apply around every call; passed as torch.compile options they
        # do not reach freezing.
        settings = inductor_config.patch({} if on_gpu else CPU_COMPILE_SETTINGS)  # made once: reusable
        # The model's float attributes (norm epsilons, attention scale) are constants: with
        # dynamic shapes they would otherwise become graph inputs, each read back with
        # .item() and guarded in Python on every call (about 0.7 ms a step here).
        constant_floats = torch._dynamo.config.patch(specialize_float=True)

        # A call with the shapes of an earlier call compiles nothing and takes the graph that
        # call took: it skips the settings and all but dynamo's differentiating guards (about
        # 0.1 ms a step on CPU). Guards depend only on these shapes: the weights never change,
        # dtypes and devices are the session's, and grad mode is always off.
        seen: set[tuple] = set()
        known_shapes = torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)  # set_stance applies
        torch.compiler.set_stance("default")  # at once: undone here, entered around calls below

        batch_one: list[AotDecodeStep] = []  # built (or loaded from disk) on the first batch-1 call

        def decode(cache: StaticCache, lengths: torch.Tensor, frames: torch.Tensor, span: int) -> torch.Tensor:
            if not on_gpu and frames.shape[0] == 1:
                if not batch_one:
                    batch_one.append(AotDecodeStep(self.runner, self.dtype))
                return batch_one[0](cache, lengths, frames, span)
            shapes = (tuple(frames.shape), len(cache.keys), cache.capacity, span)
            # no_grad, not inference_mode: inference tensors don't mix with compiled graphs
            if shapes in seen and not on_gpu:  # (untried with CUDA graphs)
                with torch.no_grad(), known_shapes:
                    return step(cache, lengths, frames, span)
            with torch.no_grad(), settings, constant_floats, compiler_warnings_hidden():
                logits = step(cache, lengths, frames, span)
            seen.add(shapes)
            return logits

        return decode

    @classmethod
    def load(cls, model: str | None = None, *, revision: str | None = None, device: str | None = None,
             dtype: str | None = None, compile: bool = False) -> ModelSession:
        """Load from a Hub repo id (cached, offline-aware) or a local folder.

        `compile=True` compiles the decode step (slow to start, faster per step).
        """
        from transformers import AutoTokenizer, HiggsAudioV2ForConditionalGeneration
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        name = resolve_model(model)
        files = checkpoint.locate(name, revision=revision)
        torch_device = pick_device(device)
        torch_dtype = pick_dtype(torch_device, dtype, compile=compile)
        configure_threads(torch_device)
        if torch_device.type == "cuda":
            check_fits(weight_bytes(files.model_dir, torch_dtype), torch.cuda.mem_get_info(torch_device)[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lm = HiggsAudioV2ForConditionalGeneration.from_pretrained(
                    files.model_dir, dtype=torch_dtype, use_safetensors=True).to(torch_device).eval()
                tokenizer = AutoTokenizer.from_pretrained(files.model_dir, trust_remote_code=False)
                codec = AudioCodec.load(files.audio_tokenizer_dir, files.model_dir, torch_device)
        except Exception as error:  # safetensors, json and torch each raise their own types
            raise ModelError(f"could not load the checkpoint at {files.model_dir}: {error}",
                             hint="the files may be corrupt or incomplete: download them again") from None
        if lm.config.codebook_size != 1026:
            raise ModelError(f"{files.model_dir} has codebook_size {lm.config.codebook_size}; Higgs Audio V2 "
                             "needs 1026 (1024 codes + stream BOS + EOS)")
        if codec.num_codebooks != lm.config.num_codebooks:
            raise ModelError(f"the audio tokenizer has {codec.num_codebooks} codebooks but the model expects "
                             f"{lm.config.num_codebooks}", hint="pair the model with its own audio tokenizer")
        return cls(name, files, lm, tokenizer, codec, torch_device, torch_dtype, compile=compile)

    # ------------------------------------------------------------------ facts

    @property
    def is_random(self) -> bool:
        return self.files.is_random

    @property
    def codec_id(self) -> str:
        return self.codec.fingerprint

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def frame_rate(self) -> int:
        return self.codec.frame_rate

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, str(self.files.model_dir), str(self.files.audio_tokenizer_dir), self.is_random,
                         self.model_id, self.codec_id, str(self.device), str(self.dtype).removeprefix("torch."),
                         self.runner.parameter_count)

    # ------------------------------------------------------------------ audio

    def encode_audio(self, audio: np.ndarray) -> np.ndarray:
        """24 kHz mono audio -> (8, frames) codes."""
        return self.codec.encode(audio)

    def encode_many(self, clips: Sequence[np.ndarray], *, batch_size: int = CODEC_BATCH_SIZE) -> list[np.ndarray]:
        """Encode several clips: each distinct clip once, clips of equal length in one pass."""
        digests = [hashlib.sha256(np.ascontiguousarray(clip, dtype=np.float32).tobytes()).digest()
                   for clip in clips]
        first: dict[bytes, int] = {}  # content -> the first clip with it
        for index, digest in enumerate(digests):
            first.setdefault(digest, index)
        by_length: dict[int, list[int]] = {}
        for index in first.values():
            by_length.setdefault(len(clips[index]), []).append(index)
        codes: dict[int, np.ndarray] = {}
        for indexes in by_length.values():
            for start in range(0, len(indexes), batch_size):
                group = indexes[start:start + batch_size]
                codes.update(zip(group, self.codec.encode_batch([clips[i] for i in group])))
        return [codes[first[digest]] for digest in digests]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.codec.decode(codes)

    # ------------------------------------------------------------------ generation

    def _jobs(self, requests: Sequence[GenerationRequest]) -> list[Job]:
        for request in requests:
            if not request.text.strip():
                raise UsageError("cannot generate speech for empty text")
            if request.max_frames < 1:
                raise UsageError("max_frames must be at least 1")
        # reference clips without codes: encoded together, each distinct clip once
        encoded = iter(self.encode_many([turn.audio for request in requests for turn in request.history
                                         if turn.codes is None]))
        jobs = []
        for request in requests:
            codes = [turn.codes if turn.codes is not None else next(encoded) for turn in request.history]
            prompt = build_prompt(request, codes, self.tokenizer, self.num_codebooks)
            jobs.append(Job(prompt, request.sampling, request.seed, request.max_frames + self.num_codebooks))
        return jobs

    def generate_frames(self, requests: Sequence[GenerationRequest], *, batch_size: int = DEFAULT_BATCH_SIZE,
                        progress: Callable[[int], None] | None = None,
                        on_frame: Callable[[int, np.ndarray], None] | None = None,
                        reuse_prefixes: bool = True) -> list[tuple[np.ndarray, bool]]:
        """Delayed frames (N, K) per request, as the model produced them, and whether it ended them.

        Requests with a voice's adapter run in groups, one per adapter, with its weights merged in
        (`training/apply.py`); each group has its own prefix store."""
        groups: dict[object, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.adapter, []).append(index)
        if list(groups) == [None]:
            return self._run(requests, None, batch_size, progress, on_frame, reuse_prefixes)
        from higgs_cli.engine.training.apply import applied

        made: list = [None] * len(requests)
        for adapter, indexes in groups.items():
            with applied(self, adapter):
                rows = self._run([requests[i] for i in indexes], adapter, batch_size, progress, on_frame,
                                 reuse_prefixes)
            for index, row in zip(indexes, rows):
                made[index] = row
        return made

    def _run(self, requests, adapter, batch_size, progress, on_frame, reuse_prefixes):
        prefixes = None
        if reuse_prefixes:
            prefixes = self.prefixes if adapter is None else self.adapter_prefixes.setdefault(adapter.digest,
                                                                                               PrefixStore())
        return run_jobs(self.runner, self._jobs(requests), slots=batch_size, device=self.device, dtype=self.dtype,
                        prefixes=prefixes, on_frames=progress, on_frame=on_frame,
                        compiled_decode=self.compiled_decode, graphs=self.graphs, workspaces=self.workspaces)

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[int], None] | None = None) -> list[GenerationResult]:
        """Generate every request (continuously batched) and decode the audio.

        Running out of memory (GPU or host) raises errors.OutOfMemory, which callers can handle
        without torch: a render lowers its batch size and goes on."""
        try:
            made = self.generate_frames(requests, batch_size=batch_size, progress=progress)
            codes = [generated_codes(frames) for frames, _ in made]
            audio = self.decode_many(codes, batch_size=batch_size)
        except (torch.OutOfMemoryError, MemoryError) as error:
            self.release_memory()
            raise OutOfMemory(f"out of memory generating {len(requests)} lines at batch size {batch_size} on "
                              f"{self.device}: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
                              batch_size=batch_size,
                              hint="lower --batch-size or max_seconds; on a GPU, bf16 halves the weights") from None
        return [GenerationResult(codes=c, audio=a, finished=finished)
                for c, a, (_, finished) in zip(codes, audio, made)]

    def warm_up(self) -> None:
        """Take a compiled decode step for one row and for several once, so that the compiler runs
        now rather than on a server's first requests (on a CPU: the batch-1 AOTInductor step and the
        graph for several rows; on a GPU the scheduler still records its own CUDA graph, for its
        workspace's shape, at its first step)."""
        if self.compiled_decode is None and not self.graphs:
            return
        for rows in (1, 2):
            self.generate_frames([GenerationRequest(text="Warm up.", max_frames=2)] * rows, batch_size=rows,
                                 reuse_prefixes=False)

    def release_memory(self) -> None:
        """Drop the cached workspaces (KV cache, captured graphs) and the allocator's free blocks."""
        self.workspaces.items.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def decode_many(self, batch: Sequence[np.ndarray], *, batch_size: int = CODEC_BATCH_SIZE) -> list[np.ndarray]:
        """Decode several code sequences, batching those of equal length (no padding, same audio)."""
        by_length: dict[int, list[int]] = {}
        for index, codes in enumerate(batch):
            by_length.setdefault(codes.shape[1], []).append(index)
        audio: list[np.ndarray | None] = [None] * len(batch)
        for indexes in by_length.values():
            for start in range(0, len(indexes), batch_size):
                group = indexes[start:start + batch_size]
                for index, decoded in zip(group, self.codec.decode_batch([batch[i] for i in group])):
                    audio[index] = decoded
        return audio

    def stream(self, request: GenerationRequest, *, chunk_frames: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
        """Yield audio while one request generates, about `chunk_frames` frames at a time.

        Each chunk is decoded with the frames before it as context and only
        its new samples are yielded, so the chunks join without seams (`chunks.ChunkDecoder`).
        """
        import queue
        import threading

        frames: queue.Queue = queue.Queue()
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                self.generate_frames([request], batch_size=1, on_frame=lambda _, f: frames.put(f))
            except BaseException as error:  # handed to the consumer
                failure.append(error)
            finally:
                frames.put(None)

        worker = threading.Thread(target=produce, daemon=True)
        worker.start()
        chunks = ChunkDecoder(self.decode, chunk_frames, request.max_frames)
        while (frame := frames.get()) is not None:
            yield from chunks.add(frame)
        rest = chunks.finish()
        if rest is not None:
            yield rest
        worker.join()
        if failure:
            raise failure[0]
