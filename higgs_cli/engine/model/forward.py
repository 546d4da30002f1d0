"""Forward passes over the Higgs Audio V2 weights with a static, preallocated KV cache.

The weights and submodules are transformers' own (`HiggsAudioV2ForConditionalGeneration`);
this module only lays out the computation for serving: one slot per batch row,
prefill into a slot, and a batched one-frame decode step over all slots.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.models.higgs_audio_v2.modeling_higgs_audio_v2 import apply_rotary_pos_emb


class StaticCache:
    """Keys and values for every slot, one tensor per layer: (slots, kv_heads, capacity, head_dim).

    Separate per-layer tensors let a compiled decode step update them in place.
    """

    def __init__(self, config, slots: int, capacity: int, dtype: torch.dtype, device: torch.device) -> None:
        shape = (slots, config.num_key_value_heads, capacity, config.head_dim)
        layers = config.num_hidden_layers
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.capacity = capacity

    def head(self, n: int) -> StaticCache:
        """The first `n` slots as a cache of views (the same memory), for a step over only them:
        the batch-1 AOTInductor step takes a cache of exactly one slot."""
        if n >= self.keys[0].shape[0]:
            return self
        view = object.__new__(StaticCache)
        view.keys, view.values = [k[:n] for k in self.keys], [v[:n] for v in self.values]
        view.capacity = self.capacity
        return view

    def read(self, slot: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A copy of one slot's first `length` positions, (layers, kv_heads, length, head_dim) each."""
        return (torch.stack([k[slot, :, :length] for k in self.keys]),
                torch.stack([v[slot, :, :length] for v in self.values]))

    def write(self, slot: int, stored: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Put keys and values from `read` at the start of a slot."""
        length = stored[0].shape[2]
        for layer, (keys, values) in enumerate(zip(self.keys, self.values)):
            keys[slot, :, :length] = stored[0][layer]
            values[slot, :, :length] = stored[1][layer]


def to_column_major(weight: torch.Tensor) -> torch.Tensor:
    """The same matrix stored transposed: x @ W.T then reads W.T contiguously, which
    MKL's matrix-vector kernels do markedly faster on CPU (about 35% here)."""
    return weight.t().contiguous().t()


def fuse_linears(linears: list[torch.nn.Linear], *, transposed: bool = False) -> torch.nn.Parameter:
    """One weight matrix for several bias-free linears over the same input.

    The linears' weights become views into the fused matrix, so memory does
    not grow and the model's own modules keep working on the same numbers.
    """
    fused = torch.cat([linear.weight.detach() for linear in linears])
    if transposed:
        fused = to_column_major(fused)
    start = 0
    for linear in linears:
        rows = linear.weight.shape[0]
        linear.weight.data = fused[start:start + rows]
        start += rows
    return torch.nn.Parameter(fused, requires_grad=False)


def packed_for_onednn(weight: torch.Tensor) -> torch.Tensor | None:
    """A bf16 weight in oneDNN's blocked layout, for `torch.ops.mkldnn._linear_pointwise` (what
    inductor's freezing uses); None where this torch cannot pack it. Measured here for 1, 32
    and 2310 rows: 22-32% less time than `F.linear` on the plain weight, the same bits, and
    each row's result the same whatever the number of rows."""
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), PACK_BATCH_HINT)
    except (AttributeError, RuntimeError):
        return None


PACK_BATCH_HINT = 32  # the layout oneDNN picks for 32 rows read fastest for 1 row too (measured)


def additive_mask(visible: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean attention mask as 0 / -inf to add to the scores: made once per pass, and
    the CPU attention kernel runs about 2.5x faster with it than with the boolean one."""
    return torch.zeros(visible.shape, dtype=dtype, device=visible.device).masked_fill_(~visible, float("-inf"))


def streams_one_row(x: torch.Tensor) -> bool:
    """Whether torch.compile is tracing a single-row step on CPU (compiled batch-1 decode).

    There, products with a weight are written as multiply-and-sum: inductor turns
    each into one loop that streams the weight once, at about the memory bandwidth
    (its matrix kernels reach about 85% of it here, MKL's matrix-vector kernel 30-50%).
    """
    return x.device.type == "cpu" and x.shape[:-1].numel() == 1 and torch.compiler.is_compiling()


STREAMS = 8


def stream_count(rows: int) -> int:
    """How many equal row blocks a streamed weight is read in: up to STREAMS, dividing `rows`."""
    return next(n for n in range(min(STREAMS, rows), 0, -1) if rows % n == 0)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight.T (+ bias), streamed for a compiled single row on CPU (see `streams_one_row`).

    `contiguous()` lays a column-major weight out by rows; freezing folds that
    into the graph's constants, so it is done once, not per step.
    """
    if not streams_one_row(x):
        return F.linear(x, weight, bias)
    weight = weight.contiguous()
    parts = weight.chunk(stream_count(weight.shape[0]))
    # inductor fuses the equal-shaped parts into one loop: each thread reads several
    # weight streams at once, which keeps more memory reads in flight than one stream does
    out = torch.cat([(x[..., None, :] * part).sum(-1) for part in parts], -1)
    return out if bias is None else out + bias


def attend_one_row(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                   scale: float) -> torch.Tensor:
    """Attention for one query row, as multiply-and-sum that inductor fuses into a few loops.

    q (1, heads, 1, D); keys and values (1, kv_heads, S, D); mask (S,) additive.
    Returns (1, heads, 1, D), as scaled_dot_product_attention does.
    """
    kv_heads, dim = keys.shape[1], q.shape[-1]
    grouped = q.reshape(1, kv_heads, -1, 1, dim)  # (1, kv, heads per kv, 1, D)
    scores = (grouped * keys[:, :, None]).sum(-1) * scale + mask
    probs = scores.softmax(-1)  # (1, kv, heads per kv, S)
    return (probs[..., None] * values[:, :, None]).sum(-2).reshape(1, -1, 1, dim)


def low_precision_cpu(x: torch.Tensor) -> bool:
    """A bf16 (or fp16) pass on CPU, where `attend_grouped` replaces torch's attention kernel."""
    return x.device.type == "cpu" and x.dtype != torch.float32


def attend_grouped(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                   scale: float) -> torch.Tensor:
    """Attention as two batched matrix products per key/value head, softmax in float32.

    q (B, heads, L, D); keys and values (B, kv_heads, S, D); mask additive, (B, 1, L, S).
    Returns (B, heads, L, D). On CPU in bf16 torch's fused attention ran 2.7x slower
    than this at batch 32 (4.75 against 1.78 ms a layer, measured here), and every
    row here is computed on its own, so a request's numbers do not depend on its neighbours.
    """
    batch, heads, length, dim = q.shape
    kv_heads, span = keys.shape[1], keys.shape[2]
    grouped = q.reshape(batch, kv_heads, heads // kv_heads * length, dim)  # the heads that share a kv head
    scores = torch.matmul(grouped, keys.transpose(-1, -2)).float().view(batch, kv_heads, -1, length, span)
    probs = (scores * scale + mask[:, :, None]).softmax(-1).to(values.dtype)
    out = torch.matmul(probs.view(batch, kv_heads, -1, span), values)
    return out.view(batch, heads, length, dim)


def has_bias(*linears: torch.nn.Linear) -> bool:
    return any(linear.bias is not None for linear in linears)


class Runner(torch.nn.Module):
    """Prefill and decode for one model. Holds no per-request state.

    A module only so that the fused weights are parameters: torch.compile then
    treats them as constants (freezing) like the model's own weights.
    """

    def __init__(self, model, *, column_major: bool = True, packed: bool = False) -> None:
        """`column_major`: store the decode weights column-major on CPU, for MKL's eager
        matrix-vector kernel. A compiled session turns it off: its graphs lay out
        (and copy) the weights themselves, and row-major weights need no copy at batch 1.
        `packed` (eager bf16 on CPU): every weight the Runner multiplies by is kept in
        oneDNN's blocked layout instead (`packed_for_onednn`), in place of the plain one."""
        super().__init__()
        self.parameter_count = sum(p.numel() for p in model.parameters())  # before packing frees views
        self.model = model
        self.config = model.config
        self.inner = model.model
        self.layers = list(self.inner.layers)
        self.num_codebooks = self.config.num_codebooks
        self.codebook_size = self.config.codebook_size
        self.audio_token_ids = (self.config.audio_token_id, self.config.audio_delay_token_id)
        # One matmul for q/k/v and one for gate/up instead of three and two (when no
        # linear has a bias); on CPU the weights a decode step reads may be stored
        # column-major (same values, same memory).
        transposed = column_major and next(model.parameters()).device.type == "cpu"
        attns = [layer.self_attn for layer in self.layers]
        self.fused = not has_bias(*(lin for a in attns for lin in (a.q_proj, a.k_proj, a.v_proj)),
                                  *(lin for layer in self.layers for mlp in (layer.mlp, layer.audio_mlp)
                                    for lin in (mlp.gate_proj, mlp.up_proj)))
        with torch.no_grad():
            if self.fused:
                self.qkv = torch.nn.ParameterList(
                    fuse_linears([a.q_proj, a.k_proj, a.v_proj], transposed=transposed) for a in attns)
                self.text_gate_up = torch.nn.ParameterList(
                    fuse_linears([layer.mlp.gate_proj, layer.mlp.up_proj]) for layer in self.layers)
                self.audio_gate_up = torch.nn.ParameterList(
                    fuse_linears([layer.audio_mlp.gate_proj, layer.audio_mlp.up_proj], transposed=transposed)
                    for layer in self.layers)
            if transposed:
                for module in [model.audio_lm_head] + [m for layer in self.layers
                                                       for m in (layer.self_attn.o_proj, layer.audio_mlp.down_proj)]:
                    module.weight.data = to_column_major(module.weight.data)
            self.packed: dict[int, torch.Tensor] = {}  # id(weight parameter) -> the same weight, packed
            if packed and self.fused and next(model.parameters()).device.type == "cpu":
                self._pack()

    def _pack(self) -> None:
        """Keep every weight `_linear` reads in oneDNN's layout, one matrix at a time (memory grows by
        one matrix at most). The plain weights are emptied, so that they are freed: the linear
        modules are then not callable, and a `Parameter` only names its packed weight. Nothing
        changes if this torch cannot pack."""
        if not self._pack_one(self.model.audio_lm_head.weight):
            return
        for idx, layer in enumerate(self.layers):
            parts = ((self.qkv[idx], (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj)),
                     (self.text_gate_up[idx], (layer.mlp.gate_proj, layer.mlp.up_proj)),
                     (self.audio_gate_up[idx], (layer.audio_mlp.gate_proj, layer.audio_mlp.up_proj)))
            for fused, views in parts:
                for view in views:  # views into the fused matrix
                    view.weight.data = view.weight.data.new_empty(0)
                self._pack_one(fused)
            for module in (layer.self_attn.o_proj, layer.mlp.down_proj, layer.audio_mlp.down_proj):
                self._pack_one(module.weight)

    def _pack_one(self, weight: torch.nn.Parameter) -> bool:
        """Pack one weight and empty the plain one; False (nothing changed) if it cannot be packed."""
        packed = packed_for_onednn(weight)
        if packed is None:
            return False
        self.packed[id(weight)] = packed
        weight.data = weight.data.new_empty(0)
        return True

    def _linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed[id(weight)], bias, "none", [], "")
        return linear(x, weight, bias)

    def _mlp(self, mlp, idx: int, x: torch.Tensor, audio: bool) -> torch.Tensor:
        if not self.fused:
            return mlp(x)
        fused = (self.audio_gate_up if audio else self.text_gate_up)[idx]
        gate, up = self._linear(x, fused).split(mlp.intermediate_size, dim=-1)
        return self._linear(mlp.act_fn(gate) * up, mlp.down_proj.weight, mlp.down_proj.bias)

    # ------------------------------------------------------------------ pieces

    def _embed_audio(self, frames: torch.Tensor) -> torch.Tensor:
        return self.inner.embed_audio_tokens(frames)

    def _attend(self, layer, layer_idx: int, hidden: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                cache: StaticCache, slots: list[int] | None, starts: torch.Tensor, mask: torch.Tensor | None,
                span: int, sizes: list[int] | None = None) -> torch.Tensor:
        """Self-attention writing this chunk's K/V into the cache at `starts` and reading [0, span).

        Decode (`slots` None): row b is slot b, one position. Prefill: row b
        writes its first sizes[b] positions into slot slots[b] from starts[b].
        """
        attn = layer.self_attn
        batch, length, _ = hidden.shape
        shape = (batch, length, -1, attn.head_dim)
        if not self.fused:
            q, k, v = attn.q_proj(hidden), attn.k_proj(hidden), attn.v_proj(hidden)
        else:
            widths = (attn.q_proj.out_features, attn.k_proj.out_features, attn.v_proj.out_features)
            q, k, v = self._linear(hidden, self.qkv[layer_idx]).split(widths, dim=-1)
        q = q.reshape(shape).transpose(1, 2)
        k = k.reshape(shape).transpose(1, 2)
        v = v.reshape(shape).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, *rope)
        keys, values = cache.keys[layer_idx], cache.values[layer_idx]
        if slots is None:  # decode: every slot, one new position each
            rows = torch.arange(batch, device=hidden.device)
            keys[rows, :, starts] = k[:, :, 0]
            values[rows, :, starts] = v[:, :, 0]
            k_all, v_all = keys[:batch, :, :span], values[:batch, :, :span]
        else:  # prefill: each row a run of positions in its own slot
            for row, (slot, start, size) in enumerate(zip(slots, starts.tolist(), sizes)):
                keys[slot, :, start:start + size] = k[row, :, :size]
                values[slot, :, start:start + size] = v[row, :, :size]
            index = torch.tensor(slots, device=hidden.device)
            k_all, v_all = keys[index, :, :span], values[index, :, :span]
        if streams_one_row(hidden):
            out = attend_one_row(q, k_all, v_all, mask.reshape(-1), attn.scaling)
        elif low_precision_cpu(hidden):
            out = attend_grouped(q, k_all, v_all, mask, attn.scaling)
        else:
            out = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask, scale=attn.scaling,
                                                 enable_gqa=k_all.shape[1] != q.shape[1])
        return self._linear(out.transpose(1, 2).reshape(batch, length, -1), attn.o_proj.weight, attn.o_proj.bias)

    def _layer(self, layer, idx: int, hidden: torch.Tensor, audio_mask: torch.Tensor | None, **attend) -> torch.Tensor:
        """One decoder layer: audio positions take the audio norms and MLP, text positions the text ones.

        `audio_mask` None means every position is audio (decode); an all-False
        mask (a prompt chunk without reference audio) runs the text branch whole.
        """
        residual = hidden
        all_text = audio_mask is not None and not bool(audio_mask.any())
        if audio_mask is None:
            normed = layer.audio_input_layernorm(hidden)
        elif all_text:
            normed = layer.input_layernorm(hidden)
        else:
            normed = hidden.clone()
            normed[audio_mask] = layer.audio_input_layernorm(hidden[audio_mask])
            normed[~audio_mask] = layer.input_layernorm(hidden[~audio_mask])
        hidden = residual + self._attend(layer, idx, normed, **attend)
        if audio_mask is None:
            return hidden + self._mlp(layer.audio_mlp, idx, layer.audio_post_attention_layernorm(hidden), True)
        if all_text:
            return hidden + self._mlp(layer.mlp, idx, layer.post_attention_layernorm(hidden), False)
        text_out = self._mlp(layer.mlp, idx, layer.post_attention_layernorm(hidden[~audio_mask]), False)
        audio_out = self._mlp(layer.audio_mlp, idx, layer.audio_post_attention_layernorm(hidden[audio_mask]), True)
        hidden[~audio_mask] += text_out
        hidden[audio_mask] += audio_out
        return hidden

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.inner.norm(hidden)
        head = self.model.audio_lm_head
        logits = self._linear(hidden, head.weight, head.bias)
        return logits.view(hidden.shape[0], self.num_codebooks, self.codebook_size).float()

    # ------------------------------------------------------------------ entry points

    @torch.inference_mode()
    def prefill_many(self, cache: StaticCache,
                     rows: list[tuple[int, torch.Tensor, torch.Tensor, int]]) -> torch.Tensor:
        """Prefill several slots in one pass: rows of (slot, input_ids, audio_frames, start).

        Prompts are right-padded to one length; a row's real tokens never see
        its padding (it comes after them), so each row's keys, values and
        logits are those of prefilling it alone. Returns (rows, K, V) logits.
        """
        device = rows[0][1].device
        pieces = [ids[start:] for _, ids, _, start in rows]
        sizes = [len(piece) for piece in pieces]
        length = max(sizes)
        pad = self.config.pad_token_id if self.config.pad_token_id is not None else 0
        ids = torch.full((len(rows), length), pad, dtype=torch.long, device=device)
        for row, piece in enumerate(pieces):
            ids[row, :len(piece)] = piece
        audio_mask = (ids == self.audio_token_ids[0]) | (ids == self.audio_token_ids[1])
        hidden = self.inner.embed_tokens(ids)
        frames = [f for _, _, f, _ in rows if f.shape[0]]
        if frames:
            hidden[audio_mask] = self._embed_audio(torch.cat(frames)[None])[0].to(hidden.dtype)
        starts = torch.tensor([start for *_, start in rows], device=device)
        positions = starts[:, None] + torch.arange(length, device=device)[None]
        span = max(start + size for (*_, start), size in zip(rows, sizes))  # the furthest real position
        keys_at = torch.arange(span, device=device)
        causal = keys_at[None, None, :] <= positions[:, :, None]  # (rows, length, span)
        bias = additive_mask(causal[:, None], hidden.dtype)
        slots = [slot for slot, *_ in rows]
        rope = self.inner.rotary_emb(hidden, positions)
        for idx, layer in enumerate(self.layers):
            hidden = self._layer(layer, idx, hidden, audio_mask, rope=rope, cache=cache, slots=slots,
                                 starts=starts, mask=bias, span=span, sizes=sizes)
        last = hidden[torch.arange(len(rows), device=device), torch.tensor(sizes, device=device) - 1]
        return self._logits(last)

    @torch.inference_mode()
    def decode(self, cache: StaticCache, lengths: torch.Tensor, frames: torch.Tensor,
               span: int | None = None) -> torch.Tensor:
        """One eager decode step; see `decode_step`."""
        return self.decode_step(cache, lengths, frames, span)

    def decode_step(self, cache: StaticCache, lengths: torch.Tensor, frames: torch.Tensor,
                    span: int | None = None) -> torch.Tensor:
        """One step for slots 0..B-1: `frames` (B, K) at positions `lengths` (B,). Returns (B, K, V).

        Attention reads positions [0, span): by default just past the longest
        row; a fixed span (the cache's capacity) keeps every shape static, for
        torch.compile and CUDA graphs.
        """
        hidden = self._embed_audio(frames[:, None])
        span = int(lengths.max()) + 1 if span is None else span
        if low_precision_cpu(hidden) and 2 * span >= cache.capacity:
            # the whole cache is contiguous, a slice of it is not, and bf16 bmm copies a slice
            # first: at batch 32 the copies took 10 of a 40 ms step, more than the masked
            # positions cost while they are under half of the cache
            span = cache.capacity
        visible = torch.arange(span, device=frames.device)[None] <= lengths[:, None]
        bias = additive_mask(visible[:, None, None], hidden.dtype)
        rope = self.inner.rotary_emb(hidden, lengths[:, None])
        for idx, layer in enumerate(self.layers):
            hidden = self._layer(layer, idx, hidden, None, rope=rope, cache=cache, slots=None,
                                 starts=lengths, mask=bias, span=span)
        return self._logits(hidden[:, -1])
