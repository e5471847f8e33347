"""Reusing a PRM's computation of solution prefixes (transformers runtime).

A tree search extends the beams it keeps by one step at a time; every PRM family is causal, so
the key/value states of a kept beam's input are all a child needs besides its new step. This
module holds those states for the prefixes that are still alive, keyed by their token ids and
bounded in tokens, and plans which prefixes one scoring call computes: the items' cached
parents, the prefixes several items of the call share (Best-of-N samples that begin alike,
siblings whose parent was evicted), and each item's whole input.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Set
from dataclasses import dataclass, field

import torch

from prm_backends.inputs import PRMInput

# Per layer: keys and values of one prefix, each (kv_heads, tokens, head_dim).
KV = list[tuple[torch.Tensor, torch.Tensor]]

DEFAULT_MAX_TOKENS = 32768


class PrefixCache:
    """Key/value states by token-id prefix, at most ``max_tokens`` tokens in all (0: none kept).

    Entries are dropped oldest first when the cap is reached (except those a call still
    needs), and at the end of each scoring call all but that call's whole inputs are dropped: a
    beam that the next call does not extend has died."""

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], KV] = OrderedDict()
        self.tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple[int, ...]) -> bool:
        return key in self._entries

    def get(self, key: tuple[int, ...]) -> KV | None:
        return self._entries.get(key)

    def put(self, key: tuple[int, ...], kv: KV, protect: Set[tuple[int, ...]] = frozenset()) -> bool:
        """Keep ``kv`` for ``key``, dropping the oldest entries not in ``protect`` as the cap
        requires; if that cannot make room, keep nothing. Returns whether it was kept."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return True
        excess = self.tokens + len(key) - self.max_tokens
        victims = []
        for old in self._entries:
            if excess <= 0:
                break
            if old not in protect:
                victims.append(old)
                excess -= len(old)
        if excess > 0:
            return False
        for old in victims:
            del self._entries[old]
            self.tokens -= len(old)
        self._entries[key] = kv
        self.tokens += len(key)
        return True

    def keep_only(self, keys: set[tuple[int, ...]]) -> None:
        for key in [k for k in self._entries if k not in keys]:
            del self._entries[key]
            self.tokens -= len(key)


@dataclass
class Plan:
    """What one scoring call computes. Step ``k`` of item ``i`` ends at token
    ``inputs[i].score_positions[k] + 1``; ``nodes[i][k]`` names that prefix (equal names, equal
    token ids). ``chains[i]`` lists, shallowest first, the step indices whose prefixes item ``i``
    materialises: the cached parent (if any), the prefixes it shares with other items where
    they part, and its last step (its whole input)."""

    inputs: list[PRMInput]
    nodes: list[list[int]]
    chains: list[list[int]]
    rows: dict[int, torch.Tensor] = field(default_factory=dict)  # node -> head output at its score position
    done: set[int] = field(default_factory=set)  # nodes computed in this call, or cached before it
    computed: list[int] = field(default_factory=list)  # tokens run per item

    def key(self, i: int, k: int) -> tuple[int, ...]:
        return tuple(self.inputs[i].input_ids[: self.inputs[i].score_positions[k] + 1])


def plan(inputs: list[PRMInput], reused: list[int], cache: PrefixCache) -> Plan:
    """The prefixes to materialise for scoring the steps after the first ``reused[i]`` of
    each input (see :class:`Plan`)."""
    names: dict[tuple[int, tuple[int, ...]], int] = {}
    nodes = []
    for inp in inputs:
        node, start, path = -1, 0, []
        for pos in inp.score_positions:
            node = names.setdefault((node, tuple(inp.input_ids[start : pos + 1])), len(names))
            start = pos + 1
            path.append(node)
        nodes.append(path)
    sharing = Counter(n for path in nodes for n in path)
    result = Plan(inputs, nodes, [], computed=[0] * len(inputs))
    for i, (path, r) in enumerate(zip(nodes, reused)):
        chain = []
        if r and result.key(i, r - 1) in cache:
            chain.append(r - 1)
            result.done.add(path[r - 1])
        first = r if chain else 0
        chain += [k for k in range(first, len(path) - 1) if 2 <= sharing[path[k]] > sharing[path[k + 1]]]
        chain.append(len(path) - 1)
        result.chains.append(chain)
    _admit_shared(result, cache)
    return result


def _admit_shared(p: Plan, cache: PrefixCache) -> None:
    """Keep in the chains only the shared prefixes the cache can hold beside the cached parents
    (shortest first): one computed but not kept would be computed again by every item on it."""
    parents = {p.key(i, chain[0]) for i, chain in enumerate(p.chains) if p.nodes[i][chain[0]] in p.done}
    room = cache.max_tokens - sum(len(key) for key in parents)
    shared: dict[int, int] = {}
    for i, chain in enumerate(p.chains):
        for k in chain[:-1]:
            node = p.nodes[i][k]
            if node not in p.done:
                shared[node] = p.inputs[i].score_positions[k] + 1
    admitted = set()
    for node, length in sorted(shared.items(), key=lambda item: item[1]):
        if length <= room:
            admitted.add(node)
            room -= length
    p.chains = [
        [k for k in chain[:-1] if p.nodes[i][k] in p.done or p.nodes[i][k] in admitted] + chain[-1:]
        for i, chain in enumerate(p.chains)
    ]


@dataclass
class Job:
    """One row of a forward pass: item ``item``'s tokens from the end of the cached prefix
    ``base`` (or from the start) up to the end of its step ``step``."""

    item: int
    step: int
    base_step: int  # -1: from the start
    base: KV | None


def waves(p: Plan, cache: PrefixCache):
    """The jobs of the plan in waves: each wave's jobs only need prefixes of earlier waves (or
    of the cache). Yields one wave (a list of jobs) at a time; the caller runs it, records the
    head rows in ``p.rows``, marks the nodes done and caches their states before the next."""
    at = [0] * len(p.inputs)
    while True:
        wave: dict[int, Job] = {}
        for i, chain in enumerate(p.chains):
            while at[i] < len(chain) and p.nodes[i][chain[at[i]]] in p.done:
                at[i] += 1
            if at[i] == len(chain):
                continue
            step = chain[at[i]]
            node = p.nodes[i][step]
            if node in wave:
                continue
            base_step, base = -1, None
            for earlier in reversed(chain[: at[i]]):
                base = cache.get(p.key(i, earlier))
                if base is not None:
                    base_step = earlier
                    break
            wave[node] = Job(i, step, base_step, base)
        if not wave:
            return
        yield list(wave.values())
