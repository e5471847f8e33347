"""The ``hf`` backend's decoding loop: continuous batching over a transformers causal LM.

A call's rows (prompt x sample) wait in a queue; up to ``batch_size`` of them decode together,
one token per row per forward step. When rows finish, the next waiting rows are prefilled and
take their slots (their KV cache is left-padded to the batch's width and joined to it), so the
batch stays full until the queue is empty. Nothing a row produces depends on the other rows:

* sampling draws row r's k-th token from a uniform number that is a hash of (r's seed, k)
  (:func:`row_uniforms`), computed on the device for every row and the next
  ``UNIFORM_BLOCK`` steps at once;
* stop strings are matched on token ids: an automaton over the bytes of the stop strings
  (:class:`StopMatcher`) advances each row's state by a table lookup per token;
* EOS, stop and length are recorded per row on the device; the host reads them only when
  it refills the batch.

:class:`DecodeStats` counts forward steps, slots and generated tokens, so slot utilisation
(generated tokens / (steps x batch width)) can be reported.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

# Reasons a row ends, as stored on the device.
RUNNING, EOS, STOP, LENGTH = 0, 1, 2, 3
REASONS = {EOS: "eos", STOP: "stop", LENGTH: "length"}
# The batch is refilled once this share of its slots (at least one) is free and rows wait.
REFILL_FRACTION = 0.125
# Without waiting rows, finished rows are dropped once this share of the batch is done.
COMPACT_FRACTION = 0.25
# On a GPU the host looks at the finish flags every this many steps (a look waits for the
# device); rows that finished meanwhile stay in their slots, their counts frozen.
SYNC_EVERY = 4
# Sampled steps whose uniforms are hashed in one go (a hash is ~20 small device operations).
UNIFORM_BLOCK = 32
_MASK32 = 0xFFFFFFFF


@dataclass
class DecodeStats:
    """Running totals over calls: ``slot_steps`` sums the batch width (``min(batch_size,
    rows of the call)``) over forward steps."""

    generated_tokens: int = 0
    steps: int = 0
    slot_steps: int = 0
    forward_seconds: float = 0.0
    host_seconds: float = 0.0  # per-step work outside the model's forward (sampling, stops, refills)
    prefill_seconds: float = 0.0  # prompts of rows joining the batch

    @property
    def utilisation(self) -> float:
        return self.generated_tokens / self.slot_steps if self.slot_steps else 0.0

    @property
    def host_ms_per_step(self) -> float:
        return 1000 * self.host_seconds / self.steps if self.steps else 0.0


@dataclass(frozen=True)
class DecodeRow:
    prompt: int  # rows of the same prompt share its prefill
    ids: list[int]
    seed: int


# -- sampling -------------------------------------------------------------------------------


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2**32`` for 32-bit ``x`` held in int64, without int64 overflow."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _MASK32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash with good avalanche (Wellons' lowbias32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def seed_keys(seeds: list[int], device: torch.device) -> torch.Tensor:
    """Per-row hash keys from 64-bit seeds (computed once per row)."""
    lo = torch.tensor([seed & _MASK32 for seed in seeds], dtype=torch.long)
    hi = torch.tensor([(seed >> 32) & _MASK32 for seed in seeds], dtype=torch.long)
    return _hash32(_hash32(lo) ^ hi).to(device)


def row_uniforms(keys: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """One uniform number in (0, 1) per row: a hash of the row's key and token index."""
    return (_hash32(keys ^ (counters & _MASK32)).double() + 0.5) / 2**32


def sample(logits: torch.Tensor, temperature: float, top_p: float, u: torch.Tensor | None) -> torch.Tensor:
    """Temperature and nucleus sampling by inverse transform, one uniform ``u`` per row
    (greedy at temperature 0, where ``u`` may be None)."""
    if temperature == 0:
        return logits.argmax(-1)
    assert u is not None, "sampling at a temperature above 0 needs one uniform per row"
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest head of the distribution whose mass reaches top_p.
        probs = probs.masked_fill(probs.cumsum(-1) - probs >= top_p, 0.0)
    cdf = probs.cumsum(-1)
    threshold = (u.to(cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
    choice = torch.searchsorted(cdf, threshold, right=True)
    # Rounding can put the threshold at the total mass; fall back to the last token with mass
    # (where the count of tokens with mass first reaches its maximum).
    last_with_mass = (probs > 0).cumsum(-1).argmax(-1, keepdim=True)
    choice = torch.minimum(choice, last_with_mass)
    return (order.gather(-1, choice) if order is not None else choice).squeeze(-1)


# -- stop strings on token ids ----------------------------------------------------------------


def token_bytes(tokenizer) -> list[bytes]:
    """The bytes each token id adds to a decoded text (special tokens: their content)."""
    size = len(tokenizer)
    special = {i: t.content for i, t in tokenizer.added_tokens_decoder.items()}
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    pieces: list[bytes] = []
    if decoder is not None and "ByteLevel" in repr(decoder):
        to_byte = _byte_level_chars()
        for i, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(size)))):
            if i in special or token is None:
                pieces.append(special.get(i, "").encode())
            else:
                pieces.append(bytes(to_byte[c] for c in token) if all(c in to_byte for c in token) else token.encode())
        return pieces
    # Other tokenizers: what a token adds after an anchor token (keeps a leading space that
    # decoding a lone token would drop).
    anchor = next(i for i in range(size) if i not in special)
    head = tokenizer.decode([anchor], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    for i in range(size):
        if i in special:
            pieces.append(special[i].encode())
            continue
        text = tokenizer.decode([anchor, i], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        pieces.append(text.removeprefix(head).encode())
    return pieces


def _byte_level_chars() -> dict[str, int]:
    """The byte each character of a byte-level BPE token stands for: printable Latin-1
    bytes are themselves, the others were moved to code points from 256 on, in byte order."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), 256)}
    chars, moved = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + moved)] = b
            moved += 1
    return chars


class StopMatcher:
    """An Aho-Corasick automaton over the bytes of the stop strings, tabulated per token:
    ``next_state[state, token]`` and ``hit[state, token]`` (a stop string ends within that
    token). A row's state is the longest suffix of its generated bytes that starts a stop."""

    def __init__(self, stop: list[str], pieces: list[bytes], device: torch.device) -> None:
        goto: list[dict[int, int]] = [{}]
        out = [False]
        for text in stop:
            state = 0
            for b in text.encode():
                if b not in goto[state]:
                    goto.append({})
                    out.append(False)
                    goto[state][b] = len(goto) - 1
                state = goto[state][b]
            out[state] = True
        fail = [0] * len(goto)
        queue = deque(goto[0].values())
        while queue:
            state = queue.popleft()
            for b, nxt in goto[state].items():
                queue.append(nxt)
                f = fail[state]
                while f and b not in goto[f]:
                    f = fail[f]
                fail[nxt] = goto[f].get(b, 0) if goto[f].get(b, 0) != nxt else 0
                out[nxt] = out[nxt] or out[fail[nxt]]

        def step(state: int, b: int) -> int:
            while state and b not in goto[state]:
                state = fail[state]
            return goto[state].get(b, 0)

        alphabet = {b for text in stop for b in text.encode()}
        states = len(goto)
        next_state = torch.zeros((states, len(pieces)), dtype=torch.long)
        hit = torch.zeros((states, len(pieces)), dtype=torch.bool)
        for t, piece in enumerate(pieces):
            if not alphabet.intersection(piece):
                continue  # any state falls back to the root, no stop can end here
            for s0 in range(states):
                s, found = s0, False
                for b in piece:
                    s = step(s, b)
                    found = found or out[s]
                next_state[s0, t], hit[s0, t] = s, found
        self.next_state = next_state.to(device)
        self.hit = hit.to(device)

    def advance(self, state: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.next_state[state, tokens], self.hit[state, tokens]


# -- the loop ---------------------------------------------------------------------------------


def _joinable(cache) -> bool:
    """Whether rows can be added to ``cache`` by left-padding (plain full-attention layers)."""
    return cache is None or all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers)


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class Batch:
    """The rows decoding together: their KV cache, mask and per-row device state."""

    def __init__(self, cache, mask, tokens, positions, keys, rows: list[int], max_tokens: int) -> None:
        self.cache, self.mask, self.tokens, self.positions, self.keys = cache, mask, tokens, positions, keys
        self.rows = rows  # slot -> index of the row in the call
        device = tokens.device
        b = len(rows)
        self.count = torch.zeros(b, dtype=torch.long, device=device)
        self.state = torch.zeros(b, dtype=torch.long, device=device)
        self.reason = torch.zeros(b, dtype=torch.long, device=device)
        self.out = torch.zeros((b, max_tokens + 1), dtype=torch.long, device=device)
        self._uniforms: torch.Tensor | None = None  # (rows, UNIFORM_BLOCK), from column _used on
        self._used = 0

    def uniforms(self) -> torch.Tensor:
        """This step's uniform of every row: the one of (its key, its count). A running row's
        count grows by one a step, so a block of the next ``UNIFORM_BLOCK`` counts is hashed
        at once (finished rows' draws are discarded, whatever they are)."""
        if self._uniforms is None or self._used == UNIFORM_BLOCK:
            block = torch.arange(UNIFORM_BLOCK, device=self.count.device)
            # sample() compares them in float32; converted once here.
            self._uniforms = row_uniforms(self.keys[:, None], self.count[:, None] + block).float()
            self._used = 0
        self._used += 1
        return self._uniforms[:, self._used - 1]

    def select(self, keep: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.batch_select_indices(keep)
        for name in ("mask", "tokens", "positions", "keys", "count", "state", "reason", "out"):
            setattr(self, name, getattr(self, name)[keep])
        self.rows = [self.rows[i] for i in keep.tolist()]
        self._uniforms = None

    def join(self, other: Batch) -> None:
        """Append ``other``'s rows: both caches left-padded to the wider one."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        template = self.cache if self.cache is not None else other.cache
        if template is not None:
            joined = [
                (
                    torch.cat([_left_pad(ka, width, 2), _left_pad(kb, width, 2)]),
                    torch.cat([_left_pad(va, width, 2), _left_pad(vb, width, 2)]),
                )
                for (ka, va), (kb, vb) in zip(
                    _layers(self.cache, len(self.rows), template), _layers(other.cache, len(other.rows), template)
                )
            ]
            for layer, (k, v) in zip(template.layers, joined):
                layer.keys, layer.values = k, v
            self.cache = template
        self.mask = torch.cat([_left_pad(self.mask, width, 1), _left_pad(other.mask, width, 1)])
        for name in ("tokens", "positions", "keys", "count", "state", "reason", "out"):
            setattr(self, name, torch.cat([getattr(self, name), getattr(other, name)]))
        self.rows = self.rows + other.rows
        self._uniforms = None
        # Columns no row attends to any more (left by rows that finished) are dropped.
        used = self.mask.any(0).nonzero()
        first = int(used[0]) if len(used) else self.mask.shape[1]
        if first and self.cache is not None:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]


def _layers(cache, rows: int, template) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's keys and values; for no cache (one-token prompts), empty ones shaped
    like ``template``'s."""
    if cache is not None:
        return [(layer.keys, layer.values) for layer in cache.layers]
    return [
        (
            layer.keys.new_zeros((rows, layer.keys.shape[1], 0, layer.keys.shape[3])),
            layer.values.new_zeros((rows, layer.values.shape[1], 0, layer.values.shape[3])),
        )
        for layer in template.layers
    ]


@torch.inference_mode()
def decode(
    model,
    rows: list[DecodeRow],
    *,
    batch_size: int,
    max_tokens: int,
    temperature: float,
    top_p: float,
    eos_ids: list[int],
    stop: StopMatcher | None,
    keeps_few_logits: bool,
    prefill: Callable[[list[DecodeRow]], tuple[torch.Tensor, torch.Tensor, object]],
    stats: DecodeStats,
) -> list[tuple[list[int], str]]:
    """Generated token ids and finish reason of every row, in order."""
    device = next(model.parameters()).device
    eos = torch.tensor(eos_ids or [-1], dtype=torch.long, device=device)
    waiting = deque(range(len(rows)))
    width = min(batch_size, len(rows))
    results: list[tuple[list[int], str] | None] = [None] * len(rows)
    batch: Batch | None = None
    refill_at = max(1, int(width * REFILL_FRACTION))
    # Reading the finish flags waits for the device; on a GPU only every few steps.
    check_every = 1 if device.type == "cpu" else SYNC_EVERY
    extra = {"logits_to_keep": 1} if keeps_few_logits else {}

    def admit(count: int) -> Batch:
        start = time.perf_counter()
        taken = [waiting.popleft() for _ in range(min(count, len(waiting)))]
        ids, mask, cache = prefill([rows[r] for r in taken])
        stats.prefill_seconds += time.perf_counter() - start
        stats.host_seconds -= time.perf_counter() - start  # counted as prefill, not host work
        lengths = mask.sum(-1)
        keys = seed_keys([rows[r].seed for r in taken], device)
        return Batch(cache, mask[:, :-1], ids[:, -1], lengths - 1, keys, taken, max_tokens)

    while True:
        start = time.perf_counter()
        if batch is None:
            batch = admit(width)
        finished = 0
        if stats.steps % check_every == 0:
            done = batch.reason != RUNNING
            finished = int(done.sum())
        if finished and (
            finished == len(batch.rows)
            or (waiting and finished >= refill_at)
            or (not waiting and finished >= max(1, int(len(batch.rows) * COMPACT_FRACTION)))
        ):
            slots = done.nonzero().flatten()  # one transfer for all finished rows
            for slot, n, why, ids in zip(
                slots.tolist(), batch.count[slots].tolist(), batch.reason[slots].tolist(), batch.out[slots].tolist()
            ):
                results[batch.rows[slot]] = (ids[:n], REASONS[why])
            keep = (~done).nonzero().flatten()
            if len(keep) == 0 and not waiting:
                stats.host_seconds += time.perf_counter() - start
                complete = [result for result in results if result is not None]
                assert len(complete) == len(rows), "every row has finished"
                stats.generated_tokens += sum(len(ids) for ids, _ in complete)
                return complete
            if len(keep):
                batch.select(keep)
            else:
                batch = None
            if waiting and (batch is None or _joinable(batch.cache)):
                newcomers = admit(width - (0 if batch is None else len(batch.rows)))
                if batch is None:
                    batch = newcomers
                else:
                    batch.join(newcomers)
        stats.host_seconds += time.perf_counter() - start
        assert batch is not None  # rows are left (else it returned above): a batch runs or was admitted

        start = time.perf_counter()
        mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch.rows), 1)], dim=1)
        out = model(
            input_ids=batch.tokens[:, None],
            attention_mask=mask,
            position_ids=batch.positions[:, None],
            past_key_values=batch.cache,
            use_cache=True,
            **extra,
        )
        middle = time.perf_counter()
        batch.mask, batch.cache = mask, out.past_key_values
        tokens = sample(out.logits[:, -1], temperature, top_p, batch.uniforms() if temperature > 0 else None)
        # Each device operation here costs a kernel launch a step on a GPU: kept few.
        running = batch.reason == RUNNING
        batch.out.scatter_(1, batch.count[:, None], tokens[:, None])
        batch.count += running
        # A running row's reason, by priority EOS > stop > length (the last where wins).
        reason = torch.where(batch.count >= max_tokens, LENGTH, RUNNING)
        if stop is not None:
            batch.state, hit = stop.advance(batch.state, tokens)
            reason = torch.where(hit, STOP, reason)
        reason = torch.where(torch.isin(tokens, eos), EOS, reason)
        batch.reason = torch.where(running, reason, batch.reason)
        batch.tokens, batch.positions = tokens, batch.positions + 1
        stats.steps += 1
        stats.slot_steps += width
        stats.forward_seconds += middle - start
        stats.host_seconds += time.perf_counter() - middle
